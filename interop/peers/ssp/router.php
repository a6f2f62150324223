<?php
// Router for `php -S` serving SimpleSAMLphp (docroot /usr/share/simplesamlphp/www), used by ssp/run.sh.
// Adds a tiny test app under /app/: on SP instances /app/login, /app/status (JSON), /app/logout
// (SP-initiated Single Logout), /app/loggedout (JSON: the LogoutResponse status); on IdP instances
// /app/idpstatus (JSON: the browser's IdP session and its SP associations).
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($path === '/app' || strpos($path, '/app/') === 0) {
    $page = basename($path === '/app' || $path === '/app/' ? 'status' : substr($path, 5));
    $f = __DIR__ . '/app/' . preg_replace('/\.php$/', '', $page) . '.php';
    if (!is_file($f)) { http_response_code(404); echo "no such app page\n"; return true; }
    require '/usr/share/simplesamlphp/lib/_autoload.php';
    require $f;
    return true;
}
// SP logout endpoint: serve the copy patched by ssp/run.sh (SOAP LogoutResponse TypeError fix).
if (preg_match('#^/module\.php/saml/sp/saml2-logout\.php(/[^/]+)$#', $path, $m)) {
    $patched = getenv('PEERS_SSP_LOGOUT_PHP');
    if (!$patched || !is_file($patched)) {
        http_response_code(500);
        echo "PEERS_SSP_LOGOUT_PHP not set or missing: start this instance with ssp/run.sh\n";
        return true;
    }
    $_SERVER['PATH_INFO'] = $m[1];
    $_SERVER['SCRIPT_NAME'] = '/module.php';
    require '/usr/share/simplesamlphp/www/_include.php';
    require $patched;
    return true;
}
return false; // let the built-in server handle SSP files (incl. PATH_INFO like module.php/saml/sp/...)
