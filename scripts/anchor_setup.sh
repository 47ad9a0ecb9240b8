#!/usr/bin/env bash
# Prepares the article's Node stack (the anchor) for `just bench-anchor`: copies
# ../shared/anchors/seed-stack (read-only) to target/anchor/seed-stack and runs its own
# setup.sh there once (npm ci, the NestJS and Next.js production builds, its database
# "seedstack"). Nothing of it is committed here; a changed original is copied again.
set -euo pipefail
cd "$(dirname "$0")/.."
src="${ANCHOR_SRC:-../shared/anchors/seed-stack}"
dst="target/anchor/seed-stack"
[[ -x "$src/setup.sh" ]] || { echo "anchor_setup: no anchor at $src" >&2; exit 1; }
stamp="$(cd "$src" && find . -type f ! -path './results/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
if [[ -f "$dst/.copied-from" && "$(cat "$dst/.copied-from")" == "$stamp" \
      && -f "$dst/api/dist/main.js" && -f "$dst/web/.next/BUILD_ID" ]]; then
  echo "anchor_setup: $dst is ready (built from $src)"
  # The database may have been dropped since; setup.sh's database part is idempotent.
  (cd "$dst" && SKIP_APT=1 SKIP_BUILD=1 ./setup.sh >/dev/null)
  exit 0
fi
rm -rf "$dst"
mkdir -p "$(dirname "$dst")"
cp -R "$src" "$dst"
chmod -R u+w "$dst"
(cd "$dst" && ./setup.sh)
echo "$stamp" > "$dst/.copied-from"
echo "anchor_setup: $dst built"
