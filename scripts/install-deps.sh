#!/usr/bin/env bash
# Installs what the build and tests need from Debian's packages, when it is
# missing. Usage: scripts/install-deps.sh [protoc]...
set -euo pipefail
pkgs=()
for dep in "$@"; do
  case "$dep" in
    protoc) command -v protoc >/dev/null || pkgs+=(protobuf-compiler) ;;
    *) echo "install-deps: unknown dependency $dep" >&2; exit 2 ;;
  esac
done
[ ${#pkgs[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
