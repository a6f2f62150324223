<?php
// GET /app/logout -> SP-initiated Single Logout (LogoutRequest to the IdP in the binding its metadata
// prefers: Redirect), then back to /app/loggedout with the outcome.
$as = new \SimpleSAML\Auth\Simple('default-sp');
$as->logout(['ReturnTo' => \SimpleSAML\Utils\HTTP::getBaseURL() . 'app/loggedout',
             'ReturnStateParam' => 'LogoutState', 'ReturnStateStage' => 'MyLogoutState']);
