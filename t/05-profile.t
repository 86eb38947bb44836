# GET and PATCH /api/profile, and the login throttle. Every rejected
# change is checked for its status, code and details, and for leaving the
# owner's row and sessions as they were.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);

use NotifyHub::Test;

require_stack();

my $owner = signup_owner(name => 'Profile Owner');
my $other = signup_owner(name => 'Other Owner');
my $run = int(time) . "-$$";

my %vars = (
    RUN      => $run,
    TOKEN    => $owner->{token},
    EMAIL    => $owner->{email},
    USER_ID  => $owner->{user}{id},
);

run_blocks(vars => \%vars);



sub owner_state {
    my ($user_id) = @_;

    return rows_text('SELECT email, name, password_hash, updated_at'
            . ' FROM users WHERE id = $1', $user_id)
        . "\n" . rows_text('SELECT id FROM sessions WHERE user_id = $1'
            . ' ORDER BY id', $user_id);
}


sub login {
    my ($email, $password) = @_;

    return api('POST', '/api/auth/login',
        json => { email => $email, password => $password });
}


# --- Rejected changes -------------------------------------------------------

my $right = $owner->{password};
my $new = 'a brand new password';

my @rejected = (
    ['empty object', {},
        400, 'invalid_request', [{ field => 'body', issue => 'required' }]],
    ['only unknown fields', { nickname => 'Ada' },
        400, 'invalid_request', [{ field => 'body', issue => 'required' }]],
    ['only null fields', { name => undef, email => undef },
        400, 'invalid_request', [{ field => 'body', issue => 'required' }]],
    ['only currentPassword', { currentPassword => $right },
        400, 'invalid_request', [{ field => 'body', issue => 'required' }]],
    ['empty name', { name => '' },
        400, 'invalid_request', [{ field => 'name', issue => 'required' }]],
    ['name of 201 characters', { name => 'n' x 201 },
        400, 'invalid_request', [{ field => 'name', issue => 'too_long' }]],
    ['number as name', { name => 42 },
        400, 'invalid_request', [{ field => 'name', issue => 'invalid_type' }]],
    ['invalid email', { email => 'not-an-email' },
        400, 'invalid_request',
        [{ field => 'email', issue => 'invalid_format' }]],
    ['empty email', { email => '' },
        400, 'invalid_request', [{ field => 'email', issue => 'required' }]],
    ['number as email', { email => 42 },
        400, 'invalid_request',
        [{ field => 'email', issue => 'invalid_type' }]],
    ['email of another owner', { email => uc $other->{email} },
        409, 'conflict', [{ field => 'email', issue => 'duplicate' }]],
    ['name with the email of another owner',
        { name => 'Not Applied', email => $other->{email} },
        409, 'conflict', [{ field => 'email', issue => 'duplicate' }]],
    ['password without currentPassword', { password => $new },
        400, 'invalid_request',
        [{ field => 'currentPassword', issue => 'required' }]],
    ['password with a null currentPassword',
        { password => $new, currentPassword => undef },
        400, 'invalid_request',
        [{ field => 'currentPassword', issue => 'required' }]],
    ['password of 9 characters',
        { password => '123456789', currentPassword => $right },
        400, 'invalid_request',
        [{ field => 'password', issue => 'too_short' }]],
    ['password of 1025 characters',
        { password => 'p' x 1025, currentPassword => $right },
        400, 'invalid_request',
        [{ field => 'password', issue => 'too_long' }]],
    ['number as password',
        { password => 12345678901, currentPassword => $right },
        400, 'invalid_request',
        [{ field => 'password', issue => 'invalid_type' }]],
    ['number as currentPassword',
        { password => $new, currentPassword => 1234567890 },
        400, 'invalid_request',
        [{ field => 'currentPassword', issue => 'invalid_type' }]],
    ['empty currentPassword', { password => $new, currentPassword => '' },
        400, 'invalid_request',
        [{ field => 'currentPassword', issue => 'required' }]],
    ['invalid password without currentPassword', { password => 'short' },
        400, 'invalid_request',
        ['<any order>', { field => 'password', issue => 'too_short' },
         { field => 'currentPassword', issue => 'required' }]],
    ['two invalid fields', { name => 'n' x 201, email => 'bad' },
        400, 'invalid_request',
        ['<any order>', { field => 'name', issue => 'too_long' },
         { field => 'email', issue => 'invalid_format' }]],
    ['wrong currentPassword',
        { password => $new, currentPassword => 'not the password' },
        401, 'unauthorized', undef],
);

like(owner_state($owner->{user}{id}), qr/\Q$owner->{email}\E/,
    'the compared state holds the owner');

for my $case (@rejected) {
    my ($name, $body, $status, $code, $details) = @$case;
    my $before = owner_state($owner->{user}{id});
    my $r = api('PATCH', '/api/profile', token => $owner->{token},
        json => $body);

    is($r->{status}, $status, "profile $name: status $status")
        or diag($r->{body});

    my %expected = (error => { code => $code, message => '~.+' });
    $expected{error}{details} = $details if $details;
    $expected{error}{'!details'} = undef unless $details;

    my @errors = json_subset($r->{json}, \%expected);
    ok(!@errors, "profile $name: error body") or diag(join "\n", @errors);

    is(owner_state($owner->{user}{id}), $before,
        "profile $name: owner row and sessions unchanged");
}

{
    my $r = api('PATCH', '/api/profile', token => $owner->{token},
        json => { password => $new, currentPassword => 'not the password' });

    is($r->{json}{error}{message}, 'current password is incorrect',
        'wrong currentPassword message');
}


# --- Accepted changes -------------------------------------------------------

{
    my $o = signup_owner(name => 'Before');
    my $before = api('GET', '/api/profile', token => $o->{token});

    sleep 0.01;

    my $r = api('PATCH', '/api/profile', token => $o->{token},
        json => { name => 'After', nickname => 'ignored' });

    is($r->{status}, 200, 'name change is 200') or diag($r->{body});
    is($r->{json}{name}, 'After', 'reply has the new name');
    is($r->{json}{email}, $o->{email}, 'email stays');
    is($r->{json}{createdAt}, $before->{json}{createdAt}, 'createdAt stays');
    isnt($r->{json}{updatedAt}, $before->{json}{updatedAt},
        'updatedAt moves');
    ok(!exists $r->{json}{nickname}, 'unknown field is ignored');
    is(psql('SELECT name FROM users WHERE id = $1', $o->{user}{id}), 'After',
        'new name is stored');

    my $got = api('GET', '/api/profile', token => $o->{token});
    is_deeply($got->{json}, $r->{json}, 'GET shows the changed profile');
}

{
    my $o = signup_owner();
    my $mixed = 'Changed.Email-' . $run . '@Example.ORG';
    my $hash = psql('SELECT password_hash FROM users WHERE id = $1',
        $o->{user}{id});
    my $r = api('PATCH', '/api/profile', token => $o->{token},
        json => { email => $mixed });

    is($r->{status}, 200, 'email change is 200') or diag($r->{body});
    is($r->{json}{email}, lc $mixed, 'new email is lower-cased');
    is(psql('SELECT email FROM users WHERE id = $1', $o->{user}{id}),
        lc $mixed, 'lower-cased email is stored');
    is(psql('SELECT password_hash FROM users WHERE id = $1', $o->{user}{id}),
        $hash, 'email change keeps the password');
    is(login(lc $mixed, $o->{password})->{status}, 200,
        'login with the new email');
    is(login($o->{email}, $o->{password})->{status}, 401,
        'login with the old email fails');

    my $same = api('PATCH', '/api/profile', token => $o->{token},
        json => { email => lc $mixed });
    is($same->{status}, 200, 'setting the own email again is 200')
        or diag($same->{body});
}

{
    my $o = signup_owner();
    my $name = "\x{e9}" x 200;
    my $r = api('PATCH', '/api/profile', token => $o->{token},
        json => { name => $name });

    is($r->{status}, 200, 'name of 200 two-byte characters is accepted')
        or diag($r->{body});
}

# A new password is stored, every other session ends, this one stays.
{
    my $o = signup_owner(password => 'first password 1');
    my $second = login($o->{email}, 'first password 1')->{json}{token};
    my $third = login($o->{email}, 'first password 1')->{json}{token};

    is(psql('SELECT count(*) FROM sessions WHERE user_id = $1',
            $o->{user}{id}), 3, 'owner has three sessions');

    my $r = api('PATCH', '/api/profile', token => $o->{token},
        json => { password => 'second password 2',
                  currentPassword => 'first password 1' });

    is($r->{status}, 200, 'password change is 200') or diag($r->{body});
    ok(!exists $r->{json}{password} && !exists $r->{json}{passwordHash},
        'reply shows no password');
    is(psql('SELECT count(*) FROM sessions WHERE user_id = $1',
            $o->{user}{id}), 1, 'other sessions are deleted');
    is(api('GET', '/api/profile', token => $o->{token})->{status}, 200,
        'the session that changed the password stays');
    is(api('GET', '/api/profile', token => $second)->{status}, 401,
        'second session ends');
    is(api('GET', '/api/profile', token => $third)->{status}, 401,
        'third session ends');
    is(login($o->{email}, 'first password 1')->{status}, 401,
        'old password no longer logs in');
    is(login($o->{email}, 'second password 2')->{status}, 200,
        'new password logs in');
}

# Password, name and email in one request.
{
    my $o = signup_owner(password => 'first password 1');
    my $email = "all-fields-$run\@example.com";
    my $r = api('PATCH', '/api/profile', token => $o->{token},
        json => { name => 'All Fields', email => $email,
                  password => 'second password 2',
                  currentPassword => 'first password 1' });

    is($r->{status}, 200, 'change of every field is 200') or diag($r->{body});
    is($r->{json}{name}, 'All Fields', 'every field: name');
    is($r->{json}{email}, $email, 'every field: email');
    is(login($email, 'second password 2')->{status}, 200,
        'every field: new email and password log in');
}


# --- Login throttling -------------------------------------------------------

# The first back-off is one second, so the checks right after the fifth
# failure send requests only.
{
    my $o = signup_owner(password => 'throttled owner 1');
    my $sessions = psql('SELECT count(*) FROM sessions WHERE user_id = $1',
        $o->{user}{id});
    my @codes = map { login($o->{email}, "wrong password $_")->{status} }
        1 .. 5;
    my $r = login($o->{email}, 'throttled owner 1');

    is("@codes", '401 401 401 401 401', 'five failed logins get 401');

    is($r->{status}, 429, 'sixth login is throttled, even with the password');
    is($r->{json}{error}{code}, 'rate_limited', 'throttled login code');
    like($r->{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/,
        'throttled login has Retry-After in seconds');
    ok(($r->{headers}{'retry-after'} // 0) <= 1,
        'first back-off is one second');
    is($r->{json}{requestId}, $r->{headers}{'x-request-id'},
        'throttled login body has the request id');
    ok(!exists $r->{json}{token}, 'throttled login has no token');
    is(psql('SELECT count(*) FROM sessions WHERE user_id = $1',
            $o->{user}{id}), $sessions, 'throttled login creates no session');

    sleep(($r->{headers}{'retry-after'} // 1) + 0.1);

    my $wrong = login($o->{email}, 'wrong password 6');
    is($wrong->{status}, 401, 'attempt after the back-off is checked');

    my $again = login($o->{email}, 'wrong password 7');
    is($again->{status}, 429, 'sixth failure throttles again');
    is($again->{headers}{'retry-after'}, 2, 'back-off doubles to 2 seconds');

    sleep 2.1;

    my $ok = login($o->{email}, 'throttled owner 1');
    is($ok->{status}, 200, 'right password after the back-off logs in')
        or diag($ok->{body});
    is(psql('SELECT count(*) FROM login_failures WHERE email = $1',
            $o->{email}), 0, 'successful login clears the failures');

    @codes = map { login($o->{email}, "wrong again $_")->{status} } 1 .. 5;
    is("@codes", '401 401 401 401 401',
        'failures count from zero after a success');
    is(login($o->{email}, 'wrong again 6')->{status}, 429,
        'fifth failure after a success throttles');
}

{
    my $email = unique_email('nobody');
    my @codes = map { login($email, "wrong password $_")->{status} } 1 .. 5;

    is("@codes", '401 401 401 401 401',
        'five failed logins of an unknown email get 401');

    my $r = login($email, 'wrong password 6');
    is($r->{status}, 429, 'unknown email is throttled the same way');
    is($r->{json}{error}{code}, 'rate_limited', 'unknown email code');
    like($r->{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/,
        'unknown email Retry-After');
}

{
    my $o = signup_owner();
    my @codes = (
        (map { login($o->{email}, "wrong $_")->{status} } 1 .. 3),
        (map { login(uc $o->{email}, "wrong $_")->{status} } 4 .. 5),
    );
    my $r = login(uc $o->{email}, $o->{password});

    is("@codes", '401 401 401 401 401', 'failures in mixed case get 401');
    is($r->{status}, 429, 'failures count per lower-cased email');
}

# A failure more than 15 minutes after the one before starts a new count.
{
    my $o = signup_owner();

    login($o->{email}, "wrong $_") for 1 .. 5;
    psql("UPDATE login_failures SET last_failed_at = now() - interval"
        . " '16 minutes', retry_at = now() - interval '15 minutes'"
        . ' WHERE email = $1', $o->{email});

    is(login($o->{email}, 'wrong 6')->{status}, 401,
        'failure after 15 quiet minutes is checked');
    is(psql('SELECT failures FROM login_failures WHERE email = $1',
            $o->{email}), 1, 'failure after 15 quiet minutes counts as 1');
    is(login($o->{email}, $o->{password})->{status}, 200,
        'login works after the count restarts');
}

# Wrong current passwords in a password change count as failed logins.
{
    my $o = signup_owner(password => 'current password 1');
    my $before = owner_state($o->{user}{id});
    my @codes = map {
        api('PATCH', '/api/profile', token => $o->{token},
            json => { password => 'another password 2',
                      currentPassword => "wrong $_" })->{status}
    } 1 .. 5;

    my $r = api('PATCH', '/api/profile', token => $o->{token},
        json => { password => 'another password 2',
                  currentPassword => 'current password 1' });
    my $login = login($o->{email}, 'current password 1');

    is("@codes", '401 401 401 401 401',
        'five wrong current passwords get 401');
    is($r->{status}, 429, 'password change is throttled after five');
    like($r->{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/,
        'throttled password change has Retry-After');
    is($login->{status}, 429, 'login of that email is throttled too');
    is(owner_state($o->{user}{id}), $before,
        'wrong and throttled password changes change nothing');
}

done_testing();

__DATA__

=== TEST 1: profile of the session owner
--- request
GET /api/profile
--- more_headers
Authorization: Bearer $TOKEN
--- error_code: 200
--- response_json
{"id": "$USER_ID", "email": "$EMAIL", "name": "Profile Owner",
 "createdAt": "~$TIME_RE", "updatedAt": "~$TIME_RE",
 "!password": null, "!passwordHash": null}


=== TEST 2: profile without a token
--- request
GET /api/profile
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}, "!id": null}


=== TEST 3: profile with an unknown token
--- request
GET /api/profile
--- more_headers
Authorization: Bearer nhs_thisTokenWasNeverIssued0000000000
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}, "!id": null}


=== TEST 4: profile change without a token
--- request
PATCH /api/profile
--- more_headers
Content-Type: application/json
--- request_body
{"name": "Nobody"}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: users


=== TEST 5: profile change with malformed JSON
--- request
PATCH /api/profile
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"name":
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json"}}


=== TEST 6: profile change without a content type
--- request
PATCH /api/profile
--- more_headers
Authorization: Bearer $TOKEN
--- request_body
{"name": "No Type"}
--- error_code: 415
--- response_json
{"error": {"code": "unsupported_media_type"}}


=== TEST 7: profile with PUT is not allowed
--- request
PUT /api/profile
--- more_headers
Authorization: Bearer $TOKEN
--- error_code: 405
--- response_headers
Allow: GET, HEAD, PATCH
--- response_json
{"error": {"code": "method_not_allowed"}}
