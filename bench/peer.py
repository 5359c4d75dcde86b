"""Side by side: the Prometheus peer (``../shared/peers/prom_bench.py``), then opswatch (``bench.alerts``).

Run from the repository root (about 8 + 6 minutes at N = 1000 with 3 trials)::

    .venv/bin/python -m bench.peer --n 1000 --seed 1 --trials 3

Needs the Debian packages ``prometheus prometheus-blackbox-exporter prometheus-alertmanager``
for the peer. The peer harness is copied to a temporary directory (it writes ``run/`` beside
itself) and run as a child process; when it has finished, ``bench.alerts`` runs with the same
N, seed, trials, interval, ``for`` and steady window in another child process, so the two never
share the 2 cores. ``/proc/loadavg`` is sampled every 5 s throughout and shown next to every
figure. ``--peer-summary`` / ``--opswatch-json`` reuse earlier results instead of running.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.alerts import TARGETS as ALERT_TARGETS
from bench.probes import TARGETS as PROBE_TARGETS

ROOT = Path(__file__).resolve().parent.parent
SHARED_PEERS = ROOT.parent / "shared" / "peers"
PEER_BINARIES = ("prometheus", "prometheus-blackbox-exporter", "prometheus-alertmanager")


class LoadSampler(threading.Thread):
    """(time.time(), 1-minute load average) every ``period`` seconds."""

    def __init__(self, period: float = 5.0) -> None:
        super().__init__(daemon=True, name="loadavg")
        self.period = period
        self.samples: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            with open("/proc/loadavg", encoding="ascii") as f:
                self.samples.append((time.time(), float(f.read().split()[0])))
            self._stop_event.wait(self.period)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=self.period + 1)

    def between(self, t0: float, t1: float) -> list[float]:
        return [v for t, v in self.samples if t0 <= t <= t1]

    def at(self, t: float) -> float | None:
        if not self.samples:
            return None
        return min(self.samples, key=lambda s: abs(s[0] - t))[1]


def run_peer(args: argparse.Namespace, work: Path) -> Path:
    missing = [b for b in PEER_BINARIES if shutil.which(b) is None]
    if missing:
        raise SystemExit(
            f"peer binaries not found: {', '.join(missing)}; install them with "
            "apt-get install -y --no-install-recommends " + " ".join(PEER_BINARIES)
        )
    if not (SHARED_PEERS / "prom_bench.py").exists():
        raise SystemExit(f"peer harness not found at {SHARED_PEERS}")
    harness = work / "peers"
    shutil.copytree(SHARED_PEERS, harness)
    run_dir = work / "peer-run"
    argv = [sys.executable, str(harness / "prom_bench.py"), "--n", str(args.n), "--trials", str(args.trials),
            "--interval", str(args.interval), "--for", str(args.for_s), "--window", str(args.window),
            "--run-dir", str(run_dir), "--port-base", str(args.port_base)]  # fmt: skip
    if args.seed is not None:
        argv += ["--seed", str(args.seed)]
    if not args.latency_trial:
        argv.append("--no-latency-trial")
    print(f"peer: {' '.join(argv)}", file=sys.stderr, flush=True)
    subprocess.run(argv, cwd=harness, check=False, stdout=subprocess.DEVNULL)
    summary = run_dir / "summary.json"
    if not summary.exists():
        raise SystemExit(f"the peer run left no summary in {run_dir}")
    return summary


def run_opswatch(args: argparse.Namespace, work: Path) -> Path:
    out = work / "opswatch.json"
    argv = [sys.executable, "-m", "bench.alerts", "--n", str(args.n), "--trials", str(args.trials),
            "--interval", str(args.interval), "--for", str(args.for_s), "--window", str(args.window),
            "--json-out", str(out), "--json-only"]  # fmt: skip
    if args.seed is not None:
        argv += ["--seed", str(args.seed)]
    if args.latency_trial:
        argv.append("--latency-trial")
    print(f"opswatch: {' '.join(argv)}", file=sys.stderr, flush=True)
    subprocess.run(argv, cwd=ROOT, check=False, stdout=subprocess.DEVNULL)
    if not out.exists():
        raise SystemExit("the opswatch run left no result")
    return out


# --------------------------------------------------------------------------- comparison


def _stats(values: list[float | None]) -> dict[str, float] | None:
    got = [v for v in values if v is not None]
    if not got:
        return None
    return {"median": round(statistics.median(got), 3), "max": round(max(got), 3)}


def _log_time(run_dir: Path, marker: str, day: float) -> float | None:
    """Wall time of the first peer bench.log line containing ``marker`` (the log has HH:MM:SS only)."""
    with (run_dir / "bench.log").open(encoding="utf-8") as f:
        for line in f:
            if marker in line:
                found = re.match(r"(\d\d):(\d\d):(\d\d) ", line)
                if found:
                    h, m, s = (int(x) for x in found.groups())
                    midnight = time.mktime((*time.localtime(day)[:3], 0, 0, 0, 0, 0, -1))
                    return midnight + 3600 * h + 60 * m + s
    return None


_PEER_PARTS = ("prometheus", "blackbox_exporter", "alertmanager")
_LATENCIES = ("firing_after_t0_s", "firing_after_for_s", "resolved_after_t1_s", "resolved_after_first_ok_s")


def peer_figures(summary: dict[str, Any], load: LoadSampler | None) -> dict[str, Any]:
    steady = summary.get("steady", {})
    total = steady.get("peers_total", {})
    probes = steady.get("probe_requests_per_s", 0) * steady.get("seconds", 0)
    for_s = summary["params"]["for_s"]
    trials = summary.get("alert_latency", {}).get("trials", [])

    def minus(a: float | None, b: float | None, c: float = 0.0) -> float | None:
        return None if a is None or b is None else a - b - c

    out: dict[str, Any] = {
        "cpu_ms_per_probe": round(1000 * total["cpu_s"] / probes, 4) if probes else None,
        "cpu_pct_one_core": total.get("cpu_pct_one_core"),
        "rss_mb": total.get("rss_mb_mean"),
        "rss_mb_max": total.get("rss_mb_max"),
        "probes_per_s": steady.get("probe_requests_per_s"),
        "firing_after_t0_s": _stats([t.get("down_to_firing_webhook_s") for t in trials]),
        "firing_after_for_s": _stats(
            [minus(t.get("down_to_firing_webhook_s"), t.get("down_first_bad_probe_s"), for_s) for t in trials]
        ),
        "resolved_after_t1_s": _stats([t.get("up_to_resolved_webhook_s") for t in trials]),
        "resolved_after_first_ok_s": _stats(
            [minus(t.get("up_to_resolved_webhook_s"), t.get("up_first_ok_probe_s")) for t in trials]
        ),
        "versions": {k: summary.get("versions", {}).get(k) for k in _PEER_PARTS},
    }
    if load is not None and load.samples:
        run_dir = Path(summary["run_dir"])
        day = load.samples[0][0]
        w0, w1 = _log_time(run_dir, "steady window", day), _log_time(run_dir, "steady:", day)
        window = load.between(w0, w1) if w0 and w1 else []
        out["load_steady"] = [window[0], window[-1]] if window else None
        out["load_trials"] = [load.at(t["t0_wall"]) for t in trials if "t0_wall" in t]
    return out


def opswatch_figures(result: dict[str, Any]) -> dict[str, Any]:
    steady = result.get("steady", {})
    lat = result.get("alert_latency", {})
    pick = ("median", "max")
    trials = result.get("trials", [])
    return {
        "cpu_ms_per_probe": steady.get("cpu_ms_per_probe"),
        "cpu_ms_per_probe_with_pg": steady.get("with_pg_cpu_ms_per_probe"),
        "cpu_pct_one_core": steady.get("cpu_pct_one_core"),
        "rss_mb": steady.get("rss_mb_mean"),
        "rss_mb_max": steady.get("rss_mb_max"),
        "pg_pss_mb": steady.get("pg_pss_mb"),
        "probes_per_s": steady.get("probes_per_s"),
        **{k: ({p: lat[k][p] for p in pick} if lat.get(k, {}).get("n") else None) for k in _LATENCIES},
        "load_steady": steady.get("loadavg_1m"),
        "load_trials": [t.get("loadavg_1m_at_t0") for t in trials],
    }


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, dict):
        return f"{v['median']} / {v['max']}"
    return str(v)


def _ratio(a: Any, b: Any) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        a, b = a["median"], b["median"]
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return "-"
    return f"{a / b:.2f}x"


def comparison_rows(ow: dict[str, Any], peer: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    def met(value: Any, limit: float) -> str:
        v = value["max"] if isinstance(value, dict) else value
        return "-" if v is None else ("yes" if v <= limit else "no")

    cpu_t, rss_t = PROBE_TARGETS["cpu_ms_per_probe"], PROBE_TARGETS["rss_peak_mb"]
    fire_t, res_t = ALERT_TARGETS["firing_after_for_s"], ALERT_TARGETS["resolved_after_first_ok_s"]
    return [
        ("CPU per probe, ms (opswatch process)", _cell(ow["cpu_ms_per_probe"]),
         _cell(peer["cpu_ms_per_probe"]),
         _ratio(ow["cpu_ms_per_probe"], peer["cpu_ms_per_probe"]), f"<= {cpu_t}",
         met(ow["cpu_ms_per_probe"], cpu_t)),
        ("CPU per probe, ms (opswatch + its PostgreSQL)", _cell(ow["cpu_ms_per_probe_with_pg"]),
         _cell(peer["cpu_ms_per_probe"]), _ratio(ow["cpu_ms_per_probe_with_pg"], peer["cpu_ms_per_probe"]),
         "", ""),
        ("RSS, MB (steady mean; opswatch process)", _cell(ow["rss_mb"]), _cell(peer["rss_mb"]),
         _ratio(ow["rss_mb"], peer["rss_mb"]), f"<= {rss_t:g}", met(ow["rss_mb_max"], rss_t)),
        ("PostgreSQL PSS, MB (opswatch's embedded)", _cell(ow["pg_pss_mb"]), "-", "-", "", ""),
        ("firing after T0, s (median / max)", _cell(ow["firing_after_t0_s"]),
         _cell(peer["firing_after_t0_s"]),
         _ratio(ow["firing_after_t0_s"], peer["firing_after_t0_s"]), "", ""),
        ("firing after first failed probe - for, s", _cell(ow["firing_after_for_s"]),
         _cell(peer["firing_after_for_s"]), _ratio(ow["firing_after_for_s"], peer["firing_after_for_s"]),
         f"<= {fire_t:g}", met(ow["firing_after_for_s"], fire_t)),
        ("resolved after T1, s (median / max)", _cell(ow["resolved_after_t1_s"]),
         _cell(peer["resolved_after_t1_s"]), _ratio(ow["resolved_after_t1_s"], peer["resolved_after_t1_s"]),
         "", ""),
        ("resolved after first good probe, s", _cell(ow["resolved_after_first_ok_s"]),
         _cell(peer["resolved_after_first_ok_s"]),
         _ratio(ow["resolved_after_first_ok_s"], peer["resolved_after_first_ok_s"]), f"<= {res_t:g}",
         met(ow["resolved_after_first_ok_s"], res_t)),
    ]  # fmt: skip


def print_comparison(ow: dict[str, Any], peer: dict[str, Any]) -> None:
    rows = [("metric", "opswatch", "peer", "opswatch/peer", "target", "met?"), *comparison_rows(ow, peer)]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print(f"load average (1 min): steady window opswatch {ow.get('load_steady')}, "
          f"peer {peer.get('load_steady')}; "
          f"at each fault opswatch {ow.get('load_trials')}, peer {peer.get('load_trials')}")  # fmt: skip
    print(f"probes/s in the steady window: opswatch {ow.get('probes_per_s')}, "
          f"peer {peer.get('probes_per_s')}; "
          f"peer versions {peer.get('versions')}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.peer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--for", dest="for_s", type=float, default=30.0)
    p.add_argument("--window", type=float, default=60.0)
    p.add_argument("--latency-trial", action=argparse.BooleanOptionalAction, default=False,
                   help="also the slow-endpoint trial on both sides (default off)")  # fmt: skip
    p.add_argument("--port-base", type=int, default=19100, help="peer harness ports base..base+4")
    p.add_argument("--peer-summary", default=None, help="use this peer summary.json instead of running it")
    p.add_argument("--opswatch-json", default=None, help="use this bench.alerts JSON instead of running it")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (peer run dir)")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="opswatch-vs-peer-"))
    load = LoadSampler()
    load.start()
    try:
        peer_path = Path(args.peer_summary) if args.peer_summary else run_peer(args, work)
        ow_path = Path(args.opswatch_json) if args.opswatch_json else run_opswatch(args, work)
    finally:
        load.stop()
    peer = peer_figures(json.loads(peer_path.read_text()), None if args.peer_summary else load)
    ow = opswatch_figures(json.loads(ow_path.read_text()))
    print_comparison(ow, peer)
    print(json.dumps({"bench": "opswatch_vs_peer", "n": args.n, "opswatch": ow, "peer": peer,
                      "peer_summary": str(peer_path), "opswatch_json": str(ow_path)}))  # fmt: skip
    if args.keep:
        print(f"kept {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
