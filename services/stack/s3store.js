#!/usr/bin/env node
'use strict';
// The embedded broker's S3 store: s3rver with atomic object writes.
//
// Why: s3rver streams an upload straight into the object's final file. When the broker dies mid-upload
// (kill -9), the truncated file stays and is served as the object, and tansu then cannot read that
// partition ("TryGet ... available 0"). Here an upload goes to a temporary file beside the object and is
// renamed over it only once every byte the client announced has arrived, so an object is either the old
// one, absent, or complete. Usage: node s3store.js <s3rver.js path> <s3rver arguments...>

const crypto = require('crypto');
const path = require('path');
const { Transform } = require('stream');

const s3rverBin = process.argv[2];
const s3rverRoot = path.resolve(path.dirname(s3rverBin), '..');
const fs = require(require.resolve('fs-extra', { paths: [s3rverRoot] }));
const FilesystemStore = require(path.join(s3rverRoot, 'lib', 'stores', 'filesystem.js'));

let uploads = 0;

function writeAtomically(objectPath, content) {
  const partial = `${objectPath}.partial-${process.pid}-${++uploads}`;
  return new Promise((resolve, reject) => {
    const out = fs.createWriteStream(partial);
    const md5 = crypto.createHash('md5');
    let length = 0;
    const fail = err => {
      out.destroy();
      fs.remove(partial).finally(() => reject(err));
    };
    if (Buffer.isBuffer(content)) {
      md5.update(content);
      length = content.length;
      out.on('error', fail).on('finish', () => resolve([partial, length, md5.digest('hex')]));
      out.end(content);
      return;
    }
    const announced = content.headers && content.headers['content-length'];
    content.on('aborted', () => fail(new Error('upload aborted by the client')));
    content
      .on('error', fail)
      .pipe(new Transform({
        transform(chunk, encoding, callback) {
          md5.update(chunk, encoding);
          length += chunk.length;
          callback(null, chunk);
        },
      }))
      .on('error', fail)
      .pipe(out)
      .on('error', fail)
      .on('finish', () => {
        if (announced !== undefined && Number(announced) !== length) {
          fail(new Error(`upload incomplete: ${length} of ${announced} bytes`));
        } else {
          resolve([partial, length, md5.digest('hex')]);
        }
      });
  });
}

FilesystemStore.prototype.putObject = async function putObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.mkdirp(path.dirname(objectPath));
  const [partial, size, md5] = await writeAtomically(objectPath, object.content);
  // Metadata first, the object's rename last: the rename is the moment the object exists.
  await this.putMetadata(object.bucket, object.key, object.metadata, md5);
  await fs.rename(partial, objectPath);
  return { size, md5 };
};

// s3rver's command line reads process.argv[2:]; drop our own first argument.
process.argv.splice(2, 1);
require(s3rverBin);
