<?php
// GET /app/loggedout?LogoutState=... -> JSON: the IdP's LogoutResponse status as saml:SP saw it.
// success: top-level Success and no second-level code (Success/PartialLogout is not a success here).
header('Content-Type: application/json');
$res = ['logout_returned' => true, 'success' => false, 'logout_status' => null];
if (isset($_REQUEST['LogoutState'])) {
    $state = \SimpleSAML\Auth\State::loadState((string)$_REQUEST['LogoutState'], 'MyLogoutState');
    $ls = $state['saml:sp:LogoutStatus'] ?? null;
    $res['logout_status'] = $ls;
    $res['success'] = is_array($ls) && $ls['Code'] === 'urn:oasis:names:tc:SAML:2.0:status:Success' && !isset($ls['SubCode']);
}
$as = new \SimpleSAML\Auth\Simple('default-sp');
$res['authenticated'] = $as->isAuthenticated();
echo json_encode($res, JSON_PRETTY_PRINT), "\n";
