"""The embedded stack: the broker and its S3 store as child processes, every service beside them,
supervised (`clonedesk up`), and the status of each (`clonedesk status`)."""
