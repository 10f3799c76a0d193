"""A Python load generator, for where wrk is missing: N connections for S seconds.

python -m bench.loadgen URL TOKEN SECONDS CONNECTIONS   (prints one JSON line)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


async def _worker(client: httpx.AsyncClient, url: str, until: float, out: list[float]) -> int:
    failures = 0
    while time.perf_counter() < until:
        started = time.perf_counter()
        response = await client.get(url)
        out.append(time.perf_counter() - started)
        failures += response.status_code >= 400
    return failures


async def _run(url: str, token: str, seconds: float, connections: int) -> dict[str, float]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=connections)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as client:
        started = time.perf_counter()
        until = started + seconds
        failures = await asyncio.gather(
            *(_worker(client, url, until, latencies) for _ in range(connections))
        )
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests_per_second": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "non2xx": float(sum(failures)),
    }


def main() -> None:
    url, token, seconds, connections = sys.argv[1:5]
    print(json.dumps(asyncio.run(_run(url, token, float(seconds), int(connections)))))


if __name__ == "__main__":
    main()
