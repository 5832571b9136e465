<?php
// Sanity check of the worker's configuration (private php.ini only).
header('Content-Type: text/plain');
echo "ini ", php_ini_loaded_file() ?: '-', "\n";
echo "scanned ", php_ini_scanned_files() ?: '-', "\n";
echo "handler ", ini_get('session.save_handler'), "\n";
echo "extensions ", implode(',', get_loaded_extensions()), "\n";
