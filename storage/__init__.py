"""Object storage: the ObjectStore protocol and its local-directory and S3 backends."""
