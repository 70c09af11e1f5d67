"""List export targets (precisions, packages, whether installed) and device profiles (targets/*.yaml).

Both lists come from the registries: a target is a module in
edgevc/export/targets, a profile a YAML file in targets/.
"""

from __future__ import annotations

import argparse
import json

from edgevc.cli.parser import add_json_flag

NAME = "targets"
HELP = "export targets and device profiles, with their precisions, packages and tolerances"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_json_flag(p)


def collect() -> dict:
    from edgevc.export import available_targets, get_target
    from edgevc.export.profiles import list_profiles, load_profile
    from edgevc.export.support import missing

    targets = []
    for name in available_targets():
        t = get_target(name)
        gone = missing(t.requires)
        targets.append({"name": name, "precisions": list(t.precisions),
                        "packages": [m for m, _ in t.requires], "missing": gone,
                        "install": sorted({f"pip install 'edgevc[{e}]'" for m, e in t.requires if m in gone})})
    profiles = []
    for name in list_profiles():
        _, prof = load_profile(name)
        tol = prof.tolerances
        profiles.append({"name": name, "backend": prof.backend, "precision": prof.precision,
                         "threads": prof.threads, "description": prof.description,
                         "tolerances": tol.to_dict(), "variants": [v.name for v in prof.variants],
                         "known_gaps": [g.to_dict() for g in prof.known_gaps]})
    return {"targets": targets, "profiles": profiles}


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def run(args: argparse.Namespace) -> int:
    data = collect()
    if args.json:
        print(json.dumps(data))
        return 0
    print(f"{'target':<12} {'precisions':<16} {'packages':<34} status")
    for t in data["targets"]:
        status = "ready" if not t["missing"] else f"missing {', '.join(t['missing'])}: {'; '.join(t['install'])}"
        print(f"{t['name']:<12} {','.join(t['precisions']):<16} {','.join(t['packages']):<34} {status}")
    print()
    print(f"{'profile':<28} {'backend':<11} {'prec':<5} {'thr':>3} {'max_abs':>8} {'rel_l2':>8} {'top1':>5} "
          f"{'top5':>5} gaps")
    for p in data["profiles"]:
        tol = p["tolerances"]
        print(f"{p['name']:<28} {p['backend']:<11} {p['precision']:<5} {p['threads'] or '-':>3} "
              f"{_fmt(tol['max_abs']):>8} {_fmt(tol['rel_l2']):>8} {_fmt(tol['top1_agreement']):>5} "
              f"{_fmt(tol['top5_agreement']):>5} {len(p['known_gaps'])}")
    return 0
