"""`python -m data_access.consent_rollup_rekey --actor EMAIL`: rebuild the consent roll-up
under the current pseudonym key (RULES.md R18, R21; README "Changing the pseudonym key").

The roll-up stores people's histories under a keyed hash of their R20 key. After
`DPO_PSEUDONYM_KEY` changes, those refs no longer match: the pages then say so and compute
the consent figures from the events directly (slower) instead of rebuilding on a page view,
which takes minutes and gigabytes of memory on large data. This command is the explicit
step: it rebuilds from every consent event, printing progress, and records the rebuild in
the audit log under `--actor` (RULES.md R41). Exits 0 when rebuilt, 1 when another build
is running or the actor is not an e-mail address.
"""

from __future__ import annotations

import argparse
import sys

from data_access import consent_rollup
from data_access.engines import Databases
from data_access.settings import config_path, email_key, email_refusal, load_settings


def rekey(dbs: Databases, *, actor: str, report=print) -> int:
    """Rebuild the roll-up of `dbs` under its pseudonym key, `report(line)` at each tenth of
    the progress; audited under `actor` as the rebuild is. Returns 0 or 1 as the module says."""
    state = consent_rollup.status(dbs)
    report(
        "The roll-up was built under another pseudonym key: rebuilding it."
        if state["key_changed"]
        else f"The roll-up is {state['status']} under the current key: rebuilding it anyway."
    )
    shown = {"tenth": -1}

    def progress(fraction: float, message: str) -> None:
        tenth = int(fraction * 10)
        if tenth != shown["tenth"]:
            shown["tenth"] = tenth
            report(f"{fraction:6.0%}  {message}")

    result = consent_rollup.rebuild(dbs, actor=actor, progress=progress)
    if result.failed:
        report(f"Not rebuilt: {result.failed['consent roll-up']}")
        return 1
    state = consent_rollup.status(dbs)
    report(f"Rebuilt: {state['events_applied']:,} events, up to id {state['watermark']:,}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_access.consent_rollup_rekey",
        description="Rebuild the consent roll-up under the current pseudonym key.",
    )
    parser.add_argument("--actor", required=True, help="your e-mail, recorded in the audit log")
    parser.add_argument("--config", default=str(config_path()), help="path of config.toml")
    args = parser.parse_args(argv)
    refusal = email_refusal(args.actor)
    if refusal or "@" not in args.actor:
        print(f"--actor must be your e-mail address: {refusal or 'no @'}", file=sys.stderr)
        return 1
    dbs = Databases.from_settings(load_settings(args.config))
    try:
        return rekey(dbs, actor=email_key(args.actor))
    finally:
        dbs.dispose()


if __name__ == "__main__":
    sys.exit(main())
