"""The client of the HTTP API (`api`), its files (`files`) and its commands (`commands`). It
speaks only HTTP: nothing here imports the server's side."""
