dnl The phpize build of rsession (what PIE runs: phpize, ./configure, make,
dnl make install). rsession is Rust, so there are no C sources: configure
dnl finds cargo, and Makefile.frag builds the crate one directory up and
dnl copies the library to modules/rsession.so, where PHP's install-modules
dnl rule (and PIE) look for it. This lives in ext/ rather than the repository
dnl root because configure writes ./Makefile, which would replace the
dnl project's own.

PHP_ARG_ENABLE([rsession],
  [whether to build rsession],
  [AS_HELP_STRING([--enable-rsession], [Build rsession, the native session save handler (default)])],
  [yes])

if test "$PHP_RSESSION" != "no"; then
  if test "$PHP_THREAD_SAFETY" = "yes"; then
    AC_MSG_ERROR([rsession: this PHP is thread-safe (ZTS); rsession supports NTS PHP only (php-fpm, CLI, mod_php with prefork)])
  fi

  dnl rustup installs into ~/.cargo/bin, which a login shell may not have on PATH.
  AC_PATH_PROG([CARGO], [cargo], [no], [$PATH:$HOME/.cargo/bin])
  if test "$CARGO" = "no"; then
    AC_MSG_ERROR([rsession: cargo not found: install Rust (https://rustup.rs), and clang and libclang-dev for its PHP bindings])
  fi

  dnl ext-php-rs's build script finds PHP through `php` and `php-config` on
  dnl PATH, or through the PHP and PHP_CONFIG variables (absolute paths). Set
  dnl them only when configure was pointed at another PHP (--with-php-config):
  dnl for PATH's PHP the build then matches a plain `cargo build --release`,
  dnl whose artifacts cargo can reuse.
  AC_MSG_CHECKING([for the PHP to build against])
  RSESSION_PHP_CONFIG=`command -v "$PHP_CONFIG"`
  if test -z "$RSESSION_PHP_CONFIG"; then
    AC_MSG_ERROR([rsession: $PHP_CONFIG not found])
  fi
  RSESSION_PHP_CONFIG=`readlink -f "$RSESSION_PHP_CONFIG"`
  RSESSION_PHP=`readlink -f "$PHP_EXECUTABLE"`
  rsession_path_php_config=`command -v php-config`
  rsession_path_php=`command -v php`
  if test "$RSESSION_PHP_CONFIG" = "`readlink -f "$rsession_path_php_config"`" &&
     test "$RSESSION_PHP" = "`readlink -f "$rsession_path_php"`"; then
    RSESSION_CARGO_ENV=
    AC_MSG_RESULT([$RSESSION_PHP (the one on PATH)])
  else
    RSESSION_CARGO_ENV="PHP=$RSESSION_PHP PHP_CONFIG=$RSESSION_PHP_CONFIG"
    AC_MSG_RESULT([$RSESSION_PHP with $RSESSION_PHP_CONFIG])
  fi

  dnl Cargo.toml sits one directory up from this file.
  RSESSION_CRATE_DIR=`cd "$abs_srcdir/.." && pwd`
  if test ! -f "$RSESSION_CRATE_DIR/Cargo.toml"; then
    AC_MSG_ERROR([rsession: no Cargo.toml in $RSESSION_CRATE_DIR])
  fi

  dnl No PHP_NEW_EXTENSION (it would compile C through libtool): the module
  dnl phpize's rules build and install is the one Makefile.frag makes.
  PHP_MODULES='$(phplibdir)/rsession.so'
  PHP_ADD_BUILD_DIR([modules])
  PHP_SUBST(CARGO)
  PHP_SUBST(RSESSION_CARGO_ENV)
  PHP_SUBST(RSESSION_CRATE_DIR)
  PHP_ADD_MAKEFILE_FRAGMENT([$abs_srcdir/Makefile.frag], [$abs_srcdir], [$abs_builddir])
fi
