"""Reconciliation on AWS Lambda, run on a schedule: finishes interrupted deletes and removes bytes
no image holds (as `imagecore reconcile` does on one machine), and returns what it did."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import attrs

from entrypoints.aws_lambda.runtime import container_from_environment
from imagecore.lifecycle import ORPHAN_GRACE

log = logging.getLogger("imagecore.reconcile")

_images = container_from_environment().images()  # once per warm instance


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    """``event`` may carry ``grace_seconds`` (the schedule's input) to change the grace period."""
    grace_seconds = event.get("grace_seconds") if isinstance(event, dict) else None
    grace = (
        timedelta(seconds=grace_seconds)
        if type(grace_seconds) is int and grace_seconds >= 0
        else ORPHAN_GRACE
    )
    report = attrs.asdict(_images.reconcile(grace))
    log.info("reconciled: %s", report)
    return report
