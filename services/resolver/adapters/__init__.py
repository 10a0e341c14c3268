"""The resolver's adapters: the LoRA cache over an engine, the tenant back office client, the record of posted
replies (the engines themselves are in engines/)."""
