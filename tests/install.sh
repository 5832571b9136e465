#!/usr/bin/env bash
# The install paths operators use, proven from the tracked files alone.
#
#   phpize  what PIE runs (composer.json's build-path, ext/): a copy of the
#           tracked files, `phpize && ./configure && make` there, the module
#           loaded with `php -n` and a session round trip on it, then
#           `make install` into a staging root.
#   deb     `make deb`, `dpkg -i`, plain `php -m` (the machine's own php.ini)
#           lists rsession and a session round trips, then `dpkg -r` and
#           `dpkg -P` leave nothing behind. Needs root; never touches an
#           rsession already installed here.
#
# Usage: tests/install.sh [phpize] [deb]   (both by default)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/.run/install
PHP_BIN=$(command -v php)
passed=0; failed=0; skipped=0

ok()   { echo "   ok: $*"; }
# has_module "$(php -m)": whether the list names rsession. Never `php -m |
# grep -q`: grep exits at the match, php's next write gets SIGPIPE and, under
# pipefail, a loaded module reads as missing (seen once on a fresh clone).
has_module() { grep -qx rsession <<<"$1"; }
fail() { echo "   FAILED: $*"; return 1; }

# round_trip PHP-ARGS...: one process writes a session, a second reads it.
round_trip() {
  local dir=$WORK/sessions-$RANDOM id=install$RANDOM out
  rm -rf "$dir"; mkdir -m 0700 -p "$dir"
  local ini=(-d session.save_handler=rsession -d "session.save_path=$dir" -d session.use_strict_mode=0)
  out=$("$@" "${ini[@]}" -r "session_id('$id'); session_start(); \$_SESSION['n'] = 41; echo session_write_close() ? 'w' : 'x';" 2>&1)
  out+=$("$@" "${ini[@]}" -r "session_id('$id'); session_start(); echo \$_SESSION['n'] + 1;" 2>&1)
  rm -rf "$dir"
  [ "$out" = w42 ] || { echo "   session round trip printed: $out"; return 1; }
}

# The tracked files (as a fresh clone has them), with fresh mtimes so that
# cargo compiles rsession itself from the copy.
copy_tracked() { # dest
  rm -rf "$1"; mkdir -p "$1"
  git -C "$ROOT" ls-files -z | (cd "$ROOT" && tar --null -T - -cf -) | tar -xmf - -C "$1"
}

test_phpize() {
  local src=$WORK/src ext log=$WORK/phpize.log stage=$WORK/stage
  copy_tracked "$src" || fail "copying the tracked files (git ls-files) to $src" || return 1
  ext=$src/ext
  # Dependencies come from the main build (make test built it just before):
  # a copy of its target dir, so that only rsession is compiled again.
  # Copied, not linked: cargo rewrites fingerprint files in place.
  local target=$ROOT/target/phpize
  rm -rf "$target"; mkdir -p "$target"
  [ -d "$ROOT/target/release" ] && cp -a "$ROOT/target/release" "$target/release"

  json=$("$PHP_BIN" -n -r '$c = json_decode(file_get_contents($argv[1]), true);
    echo $c["type"], " ", $c["php-ext"]["extension-name"], " ", $c["php-ext"]["build-path"];' "$src/composer.json")
  [ "$json" = "php-ext rsession ext" ] || fail "composer.json says: $json" || return 1
  ok "composer.json: type php-ext, extension rsession, build-path ext"

  if ! (cd "$ext" && phpize && ./configure && CARGO_TARGET_DIR=$target make -j2) > "$log" 2>&1; then
    tail -n 30 "$log" | sed 's/^/   | /'
    fail "phpize && ./configure && make in ext/ (log: $log)"; return 1
  fi
  grep -q 'Compiling rsession' "$log" || fail "cargo did not compile rsession from the copy (log: $log)" || return 1
  [ -f "$ext/modules/rsession.so" ] || fail "no ext/modules/rsession.so" || return 1
  ok "phpize && ./configure && make built ext/modules/rsession.so (cargo compiled the copy)"

  has_module "$("$PHP_BIN" -n -d "extension=$ext/modules/rsession.so" -m)" ||
    fail "php -n -d extension=modules/rsession.so -m does not list rsession" || return 1
  round_trip "$PHP_BIN" -n -d "extension=$ext/modules/rsession.so" || fail "round trip on the phpize build" || return 1
  ok "php -n -d extension=…/modules/rsession.so -m lists rsession; a session round trips"

  # PIE's last step; a staging root keeps the machine's extension dir as it is.
  rm -rf "$stage"
  (cd "$ext" && make install INSTALL_ROOT="$stage") >> "$log" 2>&1 || fail "make install (log: $log)" || return 1
  cmp -s "$ext/modules/rsession.so" "$stage$(php-config --extension-dir)/rsession.so" ||
    fail "make install did not put rsession.so in \$(php-config --extension-dir)" || return 1
  ok "make install puts rsession.so into $(php-config --extension-dir) (under INSTALL_ROOT)"
  rm -rf "$stage"
}

# dpkg_locked CMD...: dpkg, waiting (up to a minute) for another dpkg or apt
# run on this machine to finish instead of failing on its lock.
dpkg_locked() {
  local out
  for _ in $(seq 1 60); do
    if out=$("$@" 2>&1); then return 0; fi
    [[ "$out" == *"lock"* ]] || { echo "$out" | sed 's/^/   | /'; return 1; }
    sleep 1
  done
  echo "$out" | sed 's/^/   | /'; return 1
}

test_deb() {
  if [ "$(id -u)" != 0 ]; then echo "   skipped: dpkg -i needs root"; return 2; fi
  local ver ext_dir pkg deb ini
  ver=$(php-config --version | cut -d. -f1,2)
  ext_dir=$(php-config --extension-dir)
  pkg=php$ver-rsession
  ini=/etc/php/$ver/mods-available/rsession.ini
  if dpkg-query -W "$pkg" >/dev/null 2>&1 || [ -e "$ext_dir/rsession.so" ] || [ -e "$ini" ]; then
    echo "   skipped: rsession is installed on this machine (package, or make install); not replacing it"
    return 2
  fi
  rm -rf "$ROOT/target/deb"
  make --no-print-directory -s deb > "$WORK/deb.log" 2>&1 || { tail -n 20 "$WORK/deb.log"; fail "make deb"; return 1; }
  deb=$(ls "$ROOT"/target/deb/"${pkg}"_*.deb 2>/dev/null)
  [ -n "$deb" ] || fail "make deb left no $pkg .deb in target/deb" || return 1
  ok "make deb: ${deb#"$ROOT"/}"
  [[ $(dpkg-deb -f "$deb" Depends) == *"phpapi-$(php-config --phpapi)"* ]] || fail "Depends lacks phpapi-$(php-config --phpapi)" || return 1

  dpkg_locked dpkg -i "$deb" || fail "dpkg -i" || return 1
  # From here on, remove the package whatever fails.
  local rc=0
  if ! has_module "$("$PHP_BIN" -m)"; then
    fail "plain php -m does not list rsession after dpkg -i"; rc=1
  elif ! round_trip "$PHP_BIN"; then
    fail "round trip with the installed package"; rc=1
  else
    ok "dpkg -i: plain php -m lists rsession (phpenmod ran); a session round trips"
  fi

  dpkg_locked dpkg -r "$pkg" || { fail "dpkg -r"; rc=1; }
  if has_module "$("$PHP_BIN" -m)" || [ -e "$ext_dir/rsession.so" ]; then
    fail "rsession still loaded or present after dpkg -r"; rc=1
  else
    ok "dpkg -r: php -m no longer lists rsession; the .so is gone"
  fi
  dpkg_locked dpkg -P "$pkg" || { fail "dpkg -P"; rc=1; }
  local left
  left=$(find /etc/php "/var/lib/php/modules/$ver" -name '*rsession*' 2>/dev/null)
  [ -z "$left" ] || { fail "left behind: $left"; rc=1; }
  [ $rc = 0 ] && ok "dpkg -P: nothing of rsession left in /etc/php or PHP's module state"
  return $rc
}

mkdir -p "$WORK"
tests=("$@"); [ ${#tests[@]} -gt 0 ] || tests=(phpize deb)
for name in "${tests[@]}"; do
  echo "== install: $name"
  start=$SECONDS
  "test_$name"; rc=$?
  case $rc in
    0) passed=$((passed + 1)); echo "   ($((SECONDS - start)) s)" ;;
    2) skipped=$((skipped + 1)) ;;
    *) failed=$((failed + 1)) ;;
  esac
done
echo
echo "install: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
