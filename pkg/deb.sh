#!/usr/bin/env bash
# Builds a Debian package of the built extension with dpkg-deb alone:
# the .so in PHP's extension dir, mods-available/rsession.ini (a conffile),
# maintainer scripts that enable and disable it the way Debian's own PHP
# extension packages do (php-maintscript-helper, i.e. phpenmod/phpdismod,
# which leaves a module the administrator disabled alone on upgrades).
#
#   pkg/deb.sh target/release/librsession.so [out-dir]   (prints the .deb's path)
set -euo pipefail
cd "$(dirname "$0")/.."
SO=${1:?usage: $0 librsession.so [out-dir]}
OUT=${2:-$PWD/target/deb}
PHP_CONFIG=${PHP_CONFIG:-php-config}

ext_dir=$("$PHP_CONFIG" --extension-dir)
phpapi=$("$PHP_CONFIG" --phpapi)
php_ver=$("$PHP_CONFIG" --version | cut -d. -f1,2)
version=$(cargo metadata --format-version 1 --no-deps |
  php -n -r '$m = json_decode(stream_get_contents(STDIN), true);
             foreach ($m["packages"] as $p) { if ($p["name"] === "rsession") { echo $p["version"]; } }')
arch=$(dpkg --print-architecture)
pkg="php$php_ver-rsession"
[ -n "$version" ] || { echo "rsession: no version in Cargo.toml" >&2; exit 1; }

# What the library links against, as dpkg-shlibdeps would say it: the
# package owning each NEEDED library, libc6 at the newest GLIBC symbol
# version used.
shlib_depends() {
  local lib owner glibc deps=()
  for lib in $(objdump -p "$SO" | awk '$1 == "NEEDED" { print $2 }'); do
    owner=$(dpkg -S "*/$lib" 2>/dev/null | head -n1 | cut -d: -f1)
    [ -n "$owner" ] || { echo "rsession: no package owns $lib" >&2; exit 1; }
    [[ " ${deps[*]} " == *" $owner "* ]] || deps+=("$owner")
  done
  glibc=$(objdump -T "$SO" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
  local out=() d
  for d in "${deps[@]}"; do
    if [ "$d" = libc6 ] && [ -n "$glibc" ]; then out+=("libc6 (>= $glibc)"); else out+=("$d"); fi
  done
  (IFS=,; echo "${out[*]}" | sed 's/,/, /g')
}

root=$OUT/$pkg
rm -rf "$root"
install -d "$root/DEBIAN" "$root$ext_dir" "$root/etc/php/$php_ver/mods-available" \
  "$root/usr/share/doc/$pkg"
install -m 0644 "$SO" "$root$ext_dir/rsession.so"
cat > "$root/etc/php/$php_ver/mods-available/rsession.ini" <<INI
; configuration for php rsession module
; priority=20
extension=rsession.so
; Loading the extension changes nothing by itself; choose it per pool or in
; php.ini:  session.save_handler = rsession  (and a session.save_path).
INI
install -m 0644 README.md "$root/usr/share/doc/$pkg/README.md"
echo "/etc/php/$php_ver/mods-available/rsession.ini" > "$root/DEBIAN/conffiles"

cat > "$root/DEBIAN/control" <<CONTROL
Package: $pkg
Version: $version
Architecture: $arch
Maintainer: rsession developers <rsession@localhost>
Section: php
Priority: optional
Installed-Size: $(du -sk "$root" | cut -f1)
Pre-Depends: php-common (>= 2:69~)
Depends: php$php_ver-common, phpapi-$phpapi, $(shlib_depends)
Provides: php-rsession
Description: native PHP session save handler with real locking (Rust)
 rsession is session.save_handler = rsession: sessions on files, Redis or
 memcached, locked from session_start() to session_write_close(), with a
 registry of sessions per user, idle timeouts and kills.
CONTROL

# $1 of each script is dpkg's action; php_invoke runs phpenmod/phpdismod for
# every SAPI of this PHP version and triggers a php-fpm reload.
maintscript() { # name, body
  printf '#!/bin/sh\nset -e\n%s\n' "$2" > "$root/DEBIAN/$1"
  chmod 0755 "$root/DEBIAN/$1"
}
maintscript postinst "if [ \"\$1\" = configure ]; then
    . /usr/lib/php/php-maintscript-helper
    php_invoke enmod $php_ver ALL rsession || exit 1
fi"
# Disabled before the .so goes, so no PHP started meanwhile fails to load it.
maintscript prerm "if [ \"\$1\" = remove ] || [ \"\$1\" = upgrade ]; then
    . /usr/lib/php/php-maintscript-helper
    php_invoke dismod $php_ver ALL rsession || exit 1
fi"
# Purge forgets the module's enable/disable state too: phpdismod cannot once
# the ini is gone, so remove its state files (and state dirs left empty).
maintscript postrm "if [ \"\$1\" = purge ]; then
    for f in /var/lib/php/modules/$php_ver/*/*/rsession /var/lib/php/modules/$php_ver/registry/rsession; do
        [ -e \"\$f\" ] || continue
        rm -f \"\$f\"
        rmdir --ignore-fail-on-non-empty \"\${f%/rsession}\"
    done
fi"

(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | xargs -0 md5sum > DEBIAN/md5sums)
deb=$OUT/${pkg}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
