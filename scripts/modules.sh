#!/usr/bin/env bash
# modules.sh check|tidy — every Go module of the repo builds alone.
#
# go.work lets the modules see each other while developing; a user who
# builds one module (or a Dockerfile that copies one) gets only its go.mod.
# So each go.mod requires every module it imports, replaced by its path
# in the repo (github.com/gemini-balance-go/x => ../x), and its go.sum holds
# what that needs.
#
#   check  GOWORK=off go build ./... && go vet ./... in every module (make vet)
#   tidy   write the require/replace lines of the repo's own modules, then
#          GOWORK=off go mod tidy in every module (after moving an import)
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-go}"
PREFIX=github.com/gemini-balance-go/

# Every module of the repo, by the go.mod files git knows (new ones included).
modules() { git ls-files --cached --others --exclude-standard '*go.mod' | xargs -n1 dirname | sort; }

# The repo's modules whose packages dir imports, tests included, itself
# left out. Workspace mode sees an import before the go.mod says so; a
# module outside go.work (deployments/manifests) is listed on its own.
imports() {
	local list=(list -e -deps -test -f '{{with .Module}}{{.Path}}{{end}}' ./...)
	{ (cd "$1" && "$GO" "${list[@]}" 2>/dev/null) || (cd "$1" && GOWORK=off "$GO" "${list[@]}" 2>/dev/null) || true; } |
		{ grep "^$PREFIX" || true; } | sed "s#^$PREFIX##" | { grep -vx "$1" || true; } | sort -u
}

# The local modules dir's own go.mod requires.
required() { sed -n "s#^[[:space:]]*\(require[[:space:]]\+\)\?$PREFIX\([^[:space:]]*\) v.*#\2#p" "$1/go.mod"; }

# relpath from to: the path of to seen from from (both relative to the root).
relpath() { realpath -m --relative-to="$1" "$2"; }

tidy() {
	local m dep
	for m in $(modules); do
		local want
		want=$(imports "$m")
		for dep in $want; do
			(cd "$m" && "$GO" mod edit -require="$PREFIX$dep@v0.0.0" -replace="$PREFIX$dep=$(relpath "$m" "$dep")")
		done
	done
	# A replace is needed for every local module in the graph, the ones
	# required by required modules too (GOWORK=off ignores their replaces).
	local changed=1
	while [ "$changed" = 1 ]; do
		changed=0
		for m in $(modules); do
			for dep in $(required "$m"); do
				for sub in $(required "$dep"); do
					[ "$sub" = "$m" ] && continue
					if ! grep -q "^replace $PREFIX$sub " "$m/go.mod"; then
						(cd "$m" && "$GO" mod edit -replace="$PREFIX$sub=$(relpath "$m" "$sub")")
						changed=1
					fi
				done
			done
		done
	done
	for m in $(modules); do
		echo "go mod tidy: $m"
		(cd "$m" && GOWORK=off "$GO" mod tidy)
	done
	# Replaces of modules no longer in the graph are noise.
	for m in $(modules); do
		local graph
		graph=$(cd "$m" && GOWORK=off "$GO" list -m all | awk '{print $1}' | grep "^$PREFIX" | sed "s#^$PREFIX##" || true)
		for dep in $(sed -n "s#^replace $PREFIX\([^[:space:]]*\) .*#\1#p" "$m/go.mod"); do
			grep -qx "$dep" <<<"$graph" || (cd "$m" && "$GO" mod edit -dropreplace="$PREFIX$dep")
		done
	done
}

check() {
	local m failed=()
	for m in $(modules); do
		echo "GOWORK=off go build ./... && go vet ./...: $m"
		(cd "$m" && GOWORK=off "$GO" build -o /dev/null ./... && GOWORK=off "$GO" vet ./...) || failed+=("$m")
	done
	if [ "${#failed[@]}" -gt 0 ]; then
		echo "these modules do not build alone: ${failed[*]} (run scripts/modules.sh tidy)" >&2
		exit 1
	fi
}

case "${1:-}" in
check) check ;;
tidy) tidy ;;
*)
	echo "usage: $0 check|tidy" >&2
	exit 2
	;;
esac
