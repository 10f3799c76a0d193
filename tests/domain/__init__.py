"""The domain: the use cases (upload, direct upload, read, update, delete, list, thumbnail job,
reconcile) and the model, validation, query and cursor rules, over the memory adapters."""
