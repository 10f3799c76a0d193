"""Crash safety: a fault injected at every port call of every use case on every backend, and the
real server killed with SIGKILL mid-request; nothing acknowledged is lost, nothing is left
behind."""
