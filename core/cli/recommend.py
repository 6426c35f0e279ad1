"""`segstudio recommend`: recommendations for a shopper or a free-text persona."""

from __future__ import annotations

from core.cli import UserError, print_json, require_build

HELP = "recommend items for a shopper (--user) or a persona (--persona TEXT)"
DESCRIPTION = """\
Recommend items from the latest complete build, each with the reason a marketer would give.

Recommenders: hybrid (default: blend of the components below, weights tuned by the build's
evaluation on validation baskets), next_basket (learned on the validation baskets), tifu_knn,
encoder, item_knn, segment_popularity, repeat, popularity. Items the shopper already bought are
left out unless --repeat; items they returned, items not sold in the last 90 days and
non-merchandise (postage, fees, gift vouchers...) are never recommended.

A shopper who only browsed gets suggestions from what they viewed, carted or liked and from
their segment; an id the data does not know gets the shop's best sellers, labelled as a fallback.

Examples:
  segstudio recommend --user 17850
  segstudio recommend --user 17850 --n 5 --recommender item_knn --json
  segstudio recommend --user 17850 --add 22423 --remove 85123A   (what if...)
  segstudio recommend --persona "gift shopper looking for Christmas decorations under 10 pounds"
  segstudio recommend --segment 2
"""


# core.recommend.RECOMMENDERS, spelled out so that the CLI starts without numpy (a test checks)
CHOICES = ("hybrid", "next_basket", "tifu_knn", "encoder", "item_knn", "segment_popularity",
           "repeat", "popularity")


def add_arguments(parser) -> None:
    g = parser.add_mutually_exclusive_group(required=True)
    g.add_argument("--user", help="shopper id (user_id)")
    g.add_argument("--persona", metavar="TEXT", help="free-text description of a shopper")
    g.add_argument("--segment", type=int, help="segment id: what this segment buys")
    parser.add_argument("--n", type=int, default=10, help="how many items (default 10)")
    parser.add_argument("--recommender", default="hybrid", choices=list(CHOICES),
                        help="which recommender (default hybrid)")
    parser.add_argument("--repeat", action="store_true",
                        help="allow items the shopper already bought")
    parser.add_argument("--add", nargs="*", default=[], metavar="ITEM",
                        help="with --user: what if they also bought these items")
    parser.add_argument("--remove", nargs="*", default=[], metavar="ITEM",
                        help="with --user: what if they had not bought these items")
    parser.add_argument("--max-price", type=float, default=None,
                        help="with --persona: price cap (also read from the text, e.g. 'under £10')")


def _print_recs(recs: list[dict], currency: str = "£") -> None:
    if not recs:
        print("  (nothing to recommend)")
    for i, r in enumerate(recs, 1):
        price = f"  {currency}{r['price']:.2f}" if r.get("price") is not None else ""
        print(f"  {i:>2}. {r['title']} [{r['item_id']}]{price}")
        print(f"      {r['reason']}")


def run(args, settings) -> int:
    from core.recommend.previews import (PreviewError, preview_history, preview_persona,
                                         preview_segment, preview_user)
    from core.store.schema import store_currency

    if args.n < 1:
        raise UserError(f"--n must be at least 1 (got {args.n}).")
    con = settings.store().read()
    try:
        run_ = require_build(con, settings.db)
        rid = run_["run_id"]
        currency = store_currency(con, "£")
        try:
            if args.persona is not None:
                out = preview_persona(con, rid, args.persona, n=args.n,
                                      max_price=args.max_price).to_dict()
            elif args.segment is not None:
                out = preview_segment(con, rid, args.segment, n=args.n)
            elif args.add or args.remove:
                out = preview_history(con, rid, user_id=args.user, add=args.add,
                                      remove=args.remove, n=args.n, recommender=args.recommender,
                                      repeat=args.repeat)
            else:
                out = preview_user(con, rid, args.user, n=args.n, recommender=args.recommender,
                                   repeat=args.repeat)
        except PreviewError as e:
            raise UserError(str(e)) from e
    finally:
        con.close()
    out["run_id"] = rid
    out["currency"] = currency
    if args.json:
        print_json(out)
        return 0
    if args.persona is not None:
        print(f"Persona: {out['text']!r}")
        print(f"Understood: {out['understood']}")
        if out.get("ignored"):
            print("Not understood (left out of the search): " + ", ".join(out["ignored"]))
        if out["nearest_segment"]:
            s = out["nearest_segment"]
            print(f"Nearest segment: {s['segment_name']} (id {s['segment_id']}, "
                  f"similarity {s['similarity']:.2f})")
        _print_recs(out["recommendations"], currency)
    elif args.segment is not None:
        if out.get("note"):
            print(out["note"])
        print(f"Segment {out['segment_id']}: {out['segment_name']} ({out['size']:,} buyers)")
        _print_recs(out["recommendations"], currency)
    elif args.add or args.remove:
        print(f"Shopper {args.user}, {args.recommender}: before the edit")
        _print_recs(out["before"], currency)
        print(f"after adding {out['added'] or '-'} and removing {out['removed'] or '-'}:")
        _print_recs(out["after"], currency)
    else:
        seg = f", segment {out['segment_name']}" if out["segment_name"] else ""
        if out.get("note"):
            print(out["note"])
        label = " (fallback)" if out.get("basis") == "fallback" else ""
        print(f"Shopper {out['user_id']}{seg} -- {out['recommender']} recommendations{label}:")
        _print_recs(out["recommendations"], currency)
    return 0
