"""Web speed: wrk on /api/search (embedded) vs Elasticsearch's bare _search for the same query; upload p50."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_web.bench import DEFAULT_QUERY, BenchError, bench_web  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir")
    p.add_argument("--es-url", help="Elasticsearch with the same documents (default $CXRSEARCH_ES_URL)")
    p.add_argument("--es-index", help="alias (default $CXRSEARCH_ES_INDEX or cxrsearch-images)")
    p.add_argument("--query", default=DEFAULT_QUERY)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--upload-image")
    p.add_argument("--uploads", type=int, default=40)
    p.add_argument("--copy-to-es", action="store_true",
                   help="first copy the embedded index's documents into Elasticsearch (--es-url, --es-index)")
    args = p.parse_args()
    try:
        if args.copy_to_es:
            from search_web.bench import copy_to_es

            if not args.es_url:
                raise BenchError("--copy-to-es needs --es-url")
            n = copy_to_es(args.data_dir, args.es_url, args.es_index or "cxrsearch-images")
            print(f"copied {n} documents to {args.es_url} {args.es_index or 'cxrsearch-images'}", file=sys.stderr)
        result = bench_web(args.data_dir, args.es_url, args.es_index, args.query, args.seconds, args.connections,
                           args.workers, args.threads, args.upload_image, args.uploads)
    except BenchError as e:
        print(f"bench_web: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
