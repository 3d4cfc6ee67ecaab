#!/usr/bin/env bash
# Render a bake-off HTML report in headless Chromium and save a PNG screenshot, to check that
# the report opens offline and that its embedded plots render.
#
#   scripts/screenshot_report.sh REPORT.html [OUT.png] [WIDTHxHEIGHT]
#
# Needs Debian's `chromium` (apt-get install chromium). Exits 3 when it is not installed.
set -euo pipefail
report="${1:?usage: $0 REPORT.html [OUT.png] [WIDTHxHEIGHT]}"
out="${2:-${report%.html}.png}"
size="${3:-1400x2000}"
browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
    echo "chromium not found; install it with: apt-get install -y chromium" >&2
    exit 3
fi
[ -f "$report" ] || { echo "no such report: $report" >&2; exit 1; }
report_abs="$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
out_abs="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --screenshot="$out_abs" --window-size="${size/x/,}" \
    "file://$report_abs" >/dev/null 2>&1
[ -s "$out_abs" ] || { echo "chromium wrote no screenshot" >&2; exit 1; }
echo "$out_abs"
