"""`segstudio demo`: generate the seeded demo shop with planted shopper types."""

from __future__ import annotations

from core.cli import UserError, print_json

HELP = "generate a believable demo shop (a few hundred to a million shoppers)"
DESCRIPTION = """\
Generate a seeded demo gift/home/fashion shop into the store: a catalogue with categories, brands
and prices, shoppers with attributes, and a year of sessions (views, clicks, carts, purchases,
favourites, reviews, returns) with weekly and seasonal rhythm. Every shopper belongs to a planted
shopper type (bargain hunter, loyal high spender, holiday gift buyer, category specialist,
one-off visitor, night-owl browser), kept in demo_truth so segments can be checked.

The same --users and --seed always give the same shop. Running it again on a store that already
holds that demo does nothing; a different demo is replaced only with --force (its builds and saved
segments go too). A store holding ingested data is never touched.

Examples:
  segstudio demo                             2,000 shoppers into data/segstudio.duckdb
  segstudio demo --users 600 --seed 7 --db data/small.duckdb
  segstudio demo --users 1000000 --db data/big.duckdb --force
  segstudio demo --json
"""


def add_arguments(parser) -> None:
    parser.add_argument("--users", type=int, default=2000,
                        help="number of shoppers (50 to 5,000,000; default 2000)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed (default: the configured seed, 42)")
    parser.add_argument("--force", action="store_true",
                        help="replace a different demo shop already in the store")


def run(args, settings) -> int:
    from core.demo import DemoExistsError, generate_demo
    from core.progress import TqdmProgress

    seed = settings.seed if args.seed is None else args.seed
    progress = TqdmProgress(enabled=not (args.quiet or args.json))
    try:
        result = generate_demo(settings.store(), users=args.users, seed=seed,
                               progress=progress, force=args.force)
    except DemoExistsError as e:
        raise UserError(str(e)) from None
    if args.json:
        print_json(result)
        return 0
    if result.get("skipped_already_generated"):
        print(f"{result['store']} already holds this demo shop ({result['users']:,} shoppers, "
              f"seed {result['seed']}); nothing to do. Use --force to regenerate it.")
        return 0
    types = ", ".join(f"{k} {v:,}" for k, v in result["shopper_types"].items())
    print(
        f"Demo shop written to {result['store']} in {result['seconds']:.1f} s: "
        f"{result['users']:,} shoppers, {result['items']:,} items, {result['events']:,} events "
        f"({result['orders']:,} orders in {result['sessions']:,} sessions).\n"
        f"Planted shopper types: {types}.\n"
        f"Ingest {result['ingest_id']}: read {result['rows_read']:,} = loaded "
        f"{result['rows_loaded']:,} + quarantined 0 + duplicates skipped 0 (reconciles).\n"
        f"Next: `segstudio build`, then `segstudio serve`."
    )
    return 0
