<?php
// GET /app/idpstatus (IdP instances) -> JSON: is the browser's IdP session alive, and which SPs
// (associations) it has.
header('Content-Type: application/json');
$md = \SimpleSAML\Metadata\MetaDataStorageHandler::getMetadataHandler();
$idp = \SimpleSAML\IdP::getById('saml2:' . $md->getMetaDataCurrentEntityID('saml20-idp-hosted'));
$session = \SimpleSAML\Session::getSessionFromRequest();
$assocs = [];
foreach ($idp->getAssociations() as $id => $a) {
    $assocs[] = ['id' => $id, 'sp' => $a['saml:entityID'] ?? null];
}
echo json_encode(['authenticated' => $idp->isAuthenticated(),
                  'auth_source_valid' => $session->isValid('example-userpass'),
                  'associations' => $assocs], JSON_PRETTY_PRINT), "\n";
