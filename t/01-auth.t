# Owner signup, login and tenant creation, with their invalid inputs.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use NotifyHub::Test;

require_stack();

my $owner = signup_owner(password => 'first-password-1');
my $run = int(time) . "-$$";

my %vars = (
    RUN            => $run,
    NEW_EMAIL      => unique_email('signup'),
    MIXED_EMAIL    => 'Mixed.Case-' . $run . '@Example.COM',
    LOWER_EMAIL    => lc('Mixed.Case-' . $run . '@Example.COM'),
    EXISTING_EMAIL => $owner->{email},
    UPPER_EXISTING => uc $owner->{email},
    PASSWORD       => $owner->{password},
    TOKEN          => $owner->{token},
);

run_blocks(vars => \%vars);


# --- Flows that compare two responses -------------------------------------

{
    my $wrong_password = api('POST', '/api/auth/login',
        json => { email => $owner->{email}, password => 'wrong-password-1' });
    my $unknown_email = api('POST', '/api/auth/login',
        json => { email => unique_email('nobody'),
                  password => 'wrong-password-1' });

    is($wrong_password->{status}, 401, 'login with wrong password is 401');
    is($unknown_email->{status}, 401, 'login with unknown email is 401');
    is($wrong_password->{json}{error}{code}, 'unauthorized',
        'wrong password code');
    is($unknown_email->{json}{error}{code}, 'unauthorized',
        'unknown email code');
    is($unknown_email->{json}{error}{message},
        $wrong_password->{json}{error}{message},
        'wrong password and unknown email give the same message');
}

{
    my $login = api('POST', '/api/auth/login',
        json => { email => $owner->{email}, password => $owner->{password} });

    is($login->{status}, 200, 'login succeeds');
    isnt($login->{json}{token}, $owner->{token},
        'login creates a new session token');

    my $tenant = api('POST', '/api/tenants', token => $login->{json}{token},
        json => { name => 'Created with a login token' });

    is($tenant->{status}, 201, 'token from login creates a tenant')
        or diag($tenant->{body});
}

{
    my $r = api('POST', '/api/tenants', token => $owner->{token},
        json => { name => 'Key shape' });
    my $api_key = $r->{json}{apiKey} // {};

    is($r->{status}, 201, 'tenant created for the key checks');
    ok(defined $api_key->{key} && defined $api_key->{prefix}
        && index($api_key->{key}, $api_key->{prefix}) == 0,
        'API key starts with its prefix')
        or diag("key prefix \"" . ($api_key->{prefix} // 'undef')
            . "\" is not the start of the key");
    isnt($api_key->{prefix}, $api_key->{key},
        'API key prefix is shorter than the key');

    my $tenant_id = $r->{json}{tenant}{id};
    my $stored = psql('SELECT count(*) FROM api_keys WHERE tenant_id = $1',
        $tenant_id);
    is($stored, 1, 'tenant has one API key row');

    my $password_plain = psql('SELECT count(*) FROM users WHERE email = $1'
        . ' AND position($2 in password_hash) > 0',
        $owner->{email}, $owner->{password});
    is($password_plain, 0, 'password is not stored in plain text');
}

# Logout ends the session: it takes no body, and the token stops working.
{
    my $session = signup_owner();
    my $token = $session->{token};

    my $out = api('POST', '/api/auth/logout', token => $token);
    is($out->{status}, 204, 'logout without a body ends the session')
        or diag($out->{body});
    is($out->{body}, '', 'logout reply has no body');
    is(psql('SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id'
            . ' WHERE u.email = $1', $session->{email}),
        0, 'logout deletes the session row');

    my $again = api('POST', '/api/auth/logout', token => $token);
    is($again->{status}, 401, 'second logout with the same token is 401');
    is($again->{json}{error}{code}, 'unauthorized',
        'second logout has code unauthorized');

    my $tenant = api('POST', '/api/tenants', token => $token,
        json => { name => 'After logout' });
    is($tenant->{status}, 401, 'token no longer creates tenants');

    my $none = api('POST', '/api/auth/logout');
    is($none->{status}, 401, 'logout without a token is 401');
    is($none->{json}{error}{code}, 'unauthorized',
        'logout without a token has code unauthorized');

    my $relogin = api('POST', '/api/auth/login',
        json => { email => $session->{email}, password => $session->{password} });
    is($relogin->{status}, 200, 'owner logs in again after logout');
    like($relogin->{json}{token} // '', qr/^nhs_[A-Za-z0-9_-]{43}$/,
        'new login returns a new session token');
}

done_testing();

__DATA__

=== TEST 1: signup creates an owner
--- request
POST /api/auth/signup
--- more_headers
Content-Type: application/json
--- request_body
{"email": "$NEW_EMAIL", "password": "long-enough-pw", "name": "Ada Lovelace"}
--- error_code: 201
--- response_headers
X-Request-Id: ~^[A-Za-z0-9._:-]{1,128}$
Content-Type: ~^application/json
--- response_json
{"user": {"id": "~$UUID_RE", "email": "$NEW_EMAIL", "name": "Ada Lovelace",
          "createdAt": "~$TIME_RE", "!password": null, "!passwordHash": null},
 "token": "~^nhs_.+",
 "expiresAt": "~$TIME_RE"}


=== TEST 2: signup with a used email is a conflict
--- request
POST /api/auth/signup
--- more_headers
Content-Type: application/json
--- request_body
{"email": "$EXISTING_EMAIL", "password": "long-enough-pw", "name": "Ada"}
--- error_code: 409
--- response_json
{"error": {"code": "conflict", "message": "~.+"}, "requestId": "~.+"}
--- db_unchanged: users, sessions


=== TEST 3: signup email is case-insensitive
--- request
POST /api/auth/signup
--- more_headers
Content-Type: application/json
--- request_body
{"email": "$UPPER_EXISTING", "password": "long-enough-pw", "name": "Ada"}
--- error_code: 409
--- response_json
{"error": {"code": "conflict"}}
--- db_unchanged: users


=== TEST 4: signup stores the email in lower case
--- request
POST /api/auth/signup
--- more_headers
Content-Type: application/json
--- request_body
{"email": "$MIXED_EMAIL", "password": "long-enough-pw", "name": "Mixed"}
--- error_code: 201
--- response_json
{"user": {"email": "$LOWER_EMAIL"}}


=== TEST 5: password of 9 characters is too short
--- request
POST /api/auth/signup
--- more_headers
Content-Type: application/json
--- request_body
{"email": "short-$RUN@example.com", "password": "123456789", "name": "Ada"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request", "message": "~.+",
           "details": [{"field": "password", "issue": "too_short"}]},
 "requestId": "~.+"}
--- db_unchanged: users, sessions


=== TEST 6: password of 10 characters is accepted
--- request
POST /api/auth/signup
--- more_headers
Content-Type: application/json
--- request_body
{"email": "ten-$RUN@example.com", "password": "1234567890", "name": "Ada"}
--- error_code: 201
--- response_json
{"user": {"email": "ten-$RUN@example.com"}, "token": "~^nhs_"}


=== TEST 7: signup with an invalid email
--- request
POST /api/auth/signup
--- more_headers
Content-Type: application/json
--- request_body
{"email": "not-an-email", "password": "long-enough-pw", "name": "Ada"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "email", "issue": "invalid_format"}]}}
--- db_unchanged: users


=== TEST 8: signup without an email
--- request
POST /api/auth/signup
--- more_headers
Content-Type: application/json
--- request_body
{"password": "long-enough-pw", "name": "Ada"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "email", "issue": "required"}]}}
--- db_unchanged: users


=== TEST 9: signup with an empty object lists every missing field
--- request
POST /api/auth/signup
--- more_headers
Content-Type: application/json
--- request_body
{}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": ["<any order>",
                       {"field": "email", "issue": "required"},
                       {"field": "password", "issue": "required"},
                       {"field": "name", "issue": "required"}]}}
--- db_unchanged: users


=== TEST 10: signup with a number as email
--- request
POST /api/auth/signup
--- more_headers
Content-Type: application/json
--- request_body
{"email": 42, "password": "long-enough-pw", "name": "Ada"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "email", "issue": "invalid_type"}]}}
--- db_unchanged: users


=== TEST 11: signup with a number as password
--- request
POST /api/auth/signup
--- more_headers
Content-Type: application/json
--- request_body
{"email": "type-$RUN@example.com", "password": 12345678901, "name": "Ada"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "password", "issue": "invalid_type"}]}}
--- db_unchanged: users


=== TEST 12: signup with malformed JSON
--- request
POST /api/auth/signup
--- more_headers
Content-Type: application/json
--- request_body
{"email": "x@example.com", "password":
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json", "message": "~.+"}, "requestId": "~.+"}
--- db_unchanged: users


=== TEST 13: signup with a JSON array
--- request
POST /api/auth/signup
--- more_headers
Content-Type: application/json
--- request_body
[{"email": "x@example.com"}]
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json"}}
--- db_unchanged: users


=== TEST 14: signup without a content type
--- request
POST /api/auth/signup
--- request_body
{"email": "ct-$RUN@example.com", "password": "long-enough-pw", "name": "Ada"}
--- error_code: 415
--- response_json
{"error": {"code": "unsupported_media_type"}}
--- db_unchanged: users


=== TEST 15: signup with GET is not allowed
--- request
GET /api/auth/signup
--- error_code: 405
--- response_headers
Allow: ~\bPOST\b
--- response_json
{"error": {"code": "method_not_allowed"}}


=== TEST 16: login returns a session token
--- request
POST /api/auth/login
--- more_headers
Content-Type: application/json
--- request_body
{"email": "$EXISTING_EMAIL", "password": "$PASSWORD"}
--- error_code: 200
--- response_json
{"token": "~^nhs_.+", "expiresAt": "~$TIME_RE"}


=== TEST 17: login with a wrong password
--- request
POST /api/auth/login
--- more_headers
Content-Type: application/json
--- request_body
{"email": "$EXISTING_EMAIL", "password": "not-the-password"}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized", "message": "~.+"}, "requestId": "~.+",
 "!token": null}
--- db_unchanged: sessions


=== TEST 18: login with an unknown email
--- request
POST /api/auth/login
--- more_headers
Content-Type: application/json
--- request_body
{"email": "nobody-$RUN@example.com", "password": "not-the-password"}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: sessions


=== TEST 19: login without a password
--- request
POST /api/auth/login
--- more_headers
Content-Type: application/json
--- request_body
{"email": "$EXISTING_EMAIL"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "password", "issue": "required"}]}}
--- db_unchanged: sessions


=== TEST 20: tenant creation returns the tenant and a key
--- request
POST /api/tenants
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"name": "Acme"}
--- error_code: 201
--- response_json
{"tenant": {"id": "~$UUID_RE", "name": "Acme", "plan": "FREE",
            "status": "ACTIVE", "settings": {},
            "createdAt": "~$TIME_RE", "updatedAt": "~$TIME_RE"},
 "apiKey": {"id": "~$UUID_RE", "key": "~^nh_.+", "prefix": "~^nh_",
            "scopes": ["*"], "expiresAt": null}}


=== TEST 21: tenant plan is accepted in any case
--- request
POST /api/tenants
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"name": "Starter Co", "plan": "starter"}
--- error_code: 201
--- response_json
{"tenant": {"name": "Starter Co", "plan": "STARTER"}}


=== TEST 22: tenant with an unknown plan
--- request
POST /api/tenants
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"name": "Gold Co", "plan": "GOLD"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "plan", "issue": "invalid_value"}]}}
--- db_unchanged: tenants, api_keys


=== TEST 23: tenant without a name
--- request
POST /api/tenants
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"plan": "FREE"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "name", "issue": "required"}]}}
--- db_unchanged: tenants, api_keys


=== TEST 24: tenant creation without a token
--- request
POST /api/tenants
--- more_headers
Content-Type: application/json
--- request_body
{"name": "Anonymous"}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: tenants, api_keys


=== TEST 25: tenant creation with an unknown token
--- request
POST /api/tenants
--- more_headers
Content-Type: application/json
Authorization: Bearer nhs_thisTokenWasNeverIssued0000000000
--- request_body
{"name": "Forged"}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: tenants, api_keys


=== TEST 26: tenant creation with malformed JSON
--- request
POST /api/tenants
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"name": 
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json"}}
--- db_unchanged: tenants, api_keys
