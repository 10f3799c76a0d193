"""The adapters: the port contract suite (ImageRepository, BlobStore) proven on every backend of
tests/support/backends.py, and what each adapter promises beyond it (DynamoDB, S3, Pillow, the
signed upload links)."""
