"""`forensics models list | show | card | promote`: the detectors in the model registry, and their cards.

Imports are deferred into the functions so `--help` stays fast. Promotion keeps the project's rule: the
co-evolution gate makes a champion on evidence; a person may overrule it, but only with a reason, which is
kept on the version (tag `promotion.manual`) and shown on its card.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXAMPLES = """\
examples:
  forensics models list                         # every registered version: aliases, date, footage, test AUC
  forensics models show champion                # its card and registry facts (also: a version number or a folder)
  forensics models card 3 > card.md             # version 3's card as Markdown
  forensics models promote 3 --alias challenger
  forensics models promote 3 --reason "beats v2 on our held-out casework set (eval run 8f2c...)"

A version becomes `champion` through the co-evolution gate; `promote ... --alias champion` overrules it and
needs --reason, which is kept on the version.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list, inspect and promote registered detectors",
                       description="The detectors registered as forensics-detector: their versions, aliases and "
                                   "model cards (what each was trained on and what it scored).",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_subparsers(dest="action", metavar="ACTION")
    ls = what.add_parser("list", help="every registered version, newest first")
    ls.add_argument("--json", action="store_true", help="JSON on stdout")
    for name, text in (("show", "a version's card and registry facts"), ("card", "a version's card as Markdown")):
        q = what.add_parser(name, help=text)
        q.add_argument("model", help="a version number, an alias (champion, challenger), NAME@ALIAS, "
                       "models:/forensics-detector@ALIAS, or a detector folder")
        if name == "show":
            q.add_argument("--json", action="store_true", help="JSON on stdout")
    pr = what.add_parser("promote", help="point an alias at a version (champion needs --reason)")
    pr.add_argument("version", help="the version number")
    pr.add_argument("--alias", default=None, help="alias to set (default champion)")
    pr.add_argument("--reason", default=None, help="why, when overruling the gate for champion (kept on the version)")
    p.set_defaults(func=run, parser=p)


def run(args) -> int:
    if not getattr(args, "action", None):
        args.parser.print_help(sys.stderr)
        return 2
    try:
        return {"list": _list, "show": _show, "card": _card, "promote": _promote}[args.action](args)
    except ValueError as exc:
        print(f"forensics models {args.action}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1


def _list(args) -> int:
    from detectors.card import card_summary, model_card
    from detectors.promote import MODEL_NAME
    from forensics.tracking import list_model_versions, model_version_dir

    versions = list_model_versions(MODEL_NAME)
    for entry in versions:
        folder = model_version_dir(MODEL_NAME, entry["version"])
        entry["card"] = card_summary(model_card(folder, entry)) if folder else "files not found"
    if args.json:
        print(json.dumps(versions, indent=2))
    elif not versions:
        print(f"nothing is registered as {MODEL_NAME} in this tracking store; train one (make demo)", file=sys.stderr)
    else:
        for entry in versions:
            aliases = ",".join(entry["aliases"]) or "-"
            print(f"v{entry['version']:<4} {aliases:<20} {entry['created'] or '':<26} {entry['card']}")
    return 0


def _resolve(given: str):
    """(folder, registry entry or None) for a version number, an alias or a folder."""
    from detectors.promote import MODEL_NAME, alias_of
    from forensics.tracking import list_model_versions, model_version_dir, resolve_model

    if Path(given).is_dir():
        return Path(given), None
    alias = alias_of(given) or (given.split("@", 1)[1] if given.startswith(f"{MODEL_NAME}@") else None)
    versions = list_model_versions(MODEL_NAME)
    if alias:
        entry = next((v for v in versions if alias in v["aliases"]), None)
        folder = resolve_model(MODEL_NAME, alias) if entry else None
    elif given.isdigit():
        entry = next((v for v in versions if v["version"] == given), None)
        folder = model_version_dir(MODEL_NAME, given) if entry else None
    else:
        raise ValueError(f"{given}: not a folder, a version number or an alias")
    if entry is None or folder is None:
        raise ValueError(f"{given}: no such registered version of {MODEL_NAME} (see forensics models list)")
    return folder, entry


def _show(args) -> int:
    from detectors.card import card_markdown, model_card

    folder, entry = _resolve(args.model)
    card = model_card(folder, entry)
    print(json.dumps(card, indent=2) if args.json else card_markdown(card), end="" if not args.json else "\n")
    return 0


def _card(args) -> int:
    from detectors.card import card_markdown, model_card

    folder, entry = _resolve(args.model)
    print(card_markdown(model_card(folder, entry)), end="")
    return 0


def _promote(args) -> int:
    from detectors.promote import CHAMPION, MODEL_NAME, promote
    from forensics.tracking import list_model_versions, set_model_version_tags

    args.alias = args.alias or CHAMPION
    if not args.version.isdigit():
        raise ValueError(f"{args.version}: give the version number (see forensics models list)")
    if not any(v["version"] == args.version for v in list_model_versions(MODEL_NAME)):
        raise ValueError(f"version {args.version}: not registered as {MODEL_NAME} (see forensics models list)")
    if args.alias == CHAMPION and not (args.reason or "").strip():
        raise ValueError("a champion is made by the co-evolution gate on held-out evidence; to overrule it, say "
                         "why with --reason (kept on the version)")
    promote(args.version, args.alias)
    if args.reason:
        set_model_version_tags(MODEL_NAME, args.version, {f"promotion.manual.{args.alias}": args.reason.strip()[:500]})
    print(f"{MODEL_NAME} version {args.version} is now `{args.alias}`"
          + (f" (by hand: {args.reason.strip()})" if args.reason else ""))
    return 0
