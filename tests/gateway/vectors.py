"""The test vectors of gateway.md §10 and the example payloads of §8, byte for byte."""

from __future__ import annotations

SHOPIFY_SECRET = "shpss_refstream_test"
SHOPIFY_CUSTOMER = (
    b'{"id":207119551,"email":"bob.norman@mail.example.com","created_at":"2025-04-02T11:25:58-05:00",'
    b'"updated_at":"2025-04-02T11:25:58-05:00","first_name":"Bob","last_name":"Norman","state":"disabled",'
    b'"note":null,"verified_email":true,"admin_graphql_api_id":"gid://shopify/Customer/207119551"}'
)
SHOPIFY_CUSTOMER_SHA256 = "fb09dd56d80a01d6fa89028d79c00a0300fc5713b2c32bd3341deb7ade4a1fdd"
SHOPIFY_CUSTOMER_HMAC = "yNY4fZ6IbJHpHtNrIYN1L3xj+DVXaNDCDIQddAEiCGM="
SHOP = "refstream-test.myshopify.com"

SHOPIFY_ORDER = (
    b'{"id":450789469,"admin_graphql_api_id":"gid://shopify/Order/450789469","name":"#1001",'
    b'"email":"bob.norman@mail.example.com","created_at":"2008-01-10T11:00:00-05:00","currency":"USD",'
    b'"presentment_currency":"USD","total_price":"598.94","total_price_set":{"shop_money":'
    b'{"amount":"598.94","currency_code":"USD"},"presentment_money":{"amount":"598.94",'
    b'"currency_code":"USD"}},"financial_status":"paid","test":false,"discount_codes":[{"code":'
    b'"TENOFF","amount":"10.00","type":"fixed_amount"}],"note_attributes":[{"name":"colour",'
    b'"value":"green"},{"name":"referral_id","value":"ref_1"}],"customer":{"id":207119551,'
    b'"email":"bob.norman@mail.example.com","first_name":"Bob","last_name":"Norman"}}'
)
SHOPIFY_REFUND = (
    b'{"id":509562969,"order_id":450789469,"created_at":"2025-04-02T11:38:15-05:00","note":'
    b'"it broke during shipping","restock":true,"admin_graphql_api_id":"gid://shopify/Refund/509562969",'
    b'"transactions":[{"id":179259969,"order_id":450789469,"kind":"refund","gateway":"bogus",'
    b'"status":"success","amount":"209.00","currency":"USD","parent_id":801038806}]}'
)
SHOPIFY_MAPPED = [
    {
        "event_id": "gw_d08710f9cbde00797027c6494ce62772",
        "type": "signup.completed",
        "occurred_at": "2025-04-02T11:25:58-05:00",
        "customer": {
            "id": "gid://shopify/Customer/207119551",
            "email": "bob.norman@mail.example.com",
            "first_name": "Bob",
            "last_name": "Norman",
        },
    },
    {
        "event_id": "gw_c58dfecd2948fca0565b8b4a0a3c315c",
        "type": "order.completed",
        "order_id": "gid://shopify/Order/450789469",
        "referral_id": "ref_1",
        "occurred_at": "2008-01-10T11:00:00-05:00",
        "customer": {
            "id": "gid://shopify/Customer/207119551",
            "email": "bob.norman@mail.example.com",
            "first_name": "Bob",
            "last_name": "Norman",
        },
        "amount": "598.94",
        "currency": "USD",
    },
    {
        "event_id": "gw_15cf3da94ffc5be4ea2da86d38a904f6",
        "type": "order.refunded",
        "order_id": "gid://shopify/Order/450789469",
        "occurred_at": "2025-04-02T11:38:15-05:00",
        "amount": "209.00",
        "currency": "USD",
    },
]

STRIPE_SECRET = "whsec_test_secret"
STRIPE_T = 1767225600
STRIPE_SESSION = (
    b'{"id":"evt_1Pgc76B7WZ01zgkWwyRHS12y","object":"event","api_version":"2024-06-20","created":'
    b'1767225590,"data":{"object":{"id":"cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY",'
    b'"object":"checkout.session","amount_total":4990,"client_reference_id":null,"created":1767225000,'
    b'"currency":"eur","customer":"cus_bob","customer_details":{"email":"bob@example.com","name":'
    b'"Bob Lee"},"customer_email":null,"livemode":false,"metadata":{"referral_id":"ref_1"},"mode":'
    b'"payment","payment_intent":"pi_1PgafyB7WZ01zgkWSjxsAJo3","payment_status":"paid","status":'
    b'"complete"}},"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},'
    b'"type":"checkout.session.completed"}'
)
STRIPE_SESSION_SHA256 = "720948f16934614f21f28f3cd13093341bd4788a1248d9ab7c8a3fa4473a9abd"
STRIPE_SIGNATURE = (
    "t=1767225600,v1=0507b2bf0a7e3eea956d9e62ec77575afa97b90c884e56d62d51fdaed913834b"
)
STRIPE_ORDER = {
    "event_id": "gw_12de976a8c8a0ad74496b76100290866",
    "type": "order.completed",
    "order_id": "pi_1PgafyB7WZ01zgkWSjxsAJo3",
    "referral_id": "ref_1",
    "occurred_at": "2025-12-31T23:59:50Z",
    "customer": {"id": "cus_bob", "email": "bob@example.com"},
    "amount": "49.90",
    "currency": "EUR",
}
STRIPE_REFUND_OBJECT = {
    "id": "re_1Pgc72B7WZ01zgkWqPvrRrPE",
    "object": "refund",
    "amount": 100,
    "currency": "usd",
    "charge": "ch_1PgafuB7WZ01zgkWXYmPNZs8",
    "payment_intent": None,
    "created": 1234567890,
    "status": "succeeded",
}
STRIPE_REFUND = {
    "event_id": "gw_1f9f9594ba8d24719eeaba51fcca4042",
    "type": "order.refunded",
    "order_id": "ch_1PgafuB7WZ01zgkWXYmPNZs8",
    "occurred_at": "2009-02-13T23:31:30Z",
    "amount": "1.00",
    "currency": "USD",
}

REFERRALCANDY_SECRET = "rc_test_secret"
REFERRALCANDY = (
    b'{"referral_email":"friend@example.com","referral_timestamp":1434439382,'
    b'"referring_email":"advocate@example.com"}'
)
REFERRALCANDY_SHA256 = "c306bb3534e3a3bc65f5c04669b36fd7b21ebae8f389c0cfd823bd739c4eb8e4"
REFERRALCANDY_SIGNATURE = "5ed7632c88e1cb900475774ff4d28782"
REFERRALCANDY_REFERRAL_ID = "rc_656b20b33480235abd1e54f0"

REWARDFUL_SECRET = "rw_test_signing_secret"
REWARDFUL = (
    b'{"object":{"id":"e523da29-6157-4aac-b4b5-05b3b7b14fb6","link":{"id":"32a19d65-2b68-434d-a401-e72ca7f24d81",'
    b'"url":"http://www.example.com/?via=jb007","token":"jb007"},"visits":42,"customer":{"id":"cus_ABC123",'
    b'"name":"Fred Durst","email":"fred@example.com","platform":"stripe"},"affiliate":{"id":'
    b'"dc939584-a94a-4bdf-b8f4-8d255aae729c","email":"james.bond@mi6.co.uk","first_name":"James",'
    b'"last_name":"Bond","campaign":{"id":"ae37c8ce-f82b-4e1b-9653-b802ae459a62",'
    b'"name":"Friends of MI6"},'
    b'"stripe_customer_id":null},"created_at":"2020-04-27T00:34:28.448Z","became_lead_at":'
    b'"2020-04-27T00:36:28.448Z","became_conversion_at":"2020-04-27T00:38:28.448Z","expires_at":'
    b'"2020-06-26T00:34:28.448Z","updated_at":"2020-04-27T00:38:28.448Z","deactivated_at":null,'
    b'"conversion_state":"conversion","stripe_customer_id":"cus_ABC123"},"event":{"id":'
    b'"7fcdc81d-996a-4b7b-8faf-1db98b9d5507","type":"referral.converted","created_at":'
    b'"2020-04-27T00:38:29.000Z","api_version":"v1"},"request":{"id":"66a94f49-2b36-403c-83b8-91677cb1f460"}}'
)
REWARDFUL_SHA256 = "0f5bbbfe511644a4c9d6d9d1d7f3dafb7efa9160c15be59ea8ace9d02d85dca7"
REWARDFUL_SIGNATURE = "9b6750dc2a2e54e062591e1cb40a69288ab3fc563cadab17c9174cb90a2d16b7"
REWARDFUL_MAPPED = [
    {
        "event_id": "gw_273c38b128fb533f2b3254558897e6eb",
        "type": "referral.created",
        "referral_id": "rw_e523da29-6157-4aac-b4b5-05b3b7b14fb6",
        "occurred_at": "2020-04-27T00:34:28.448Z",
        "advocate": {
            "id": "dc939584-a94a-4bdf-b8f4-8d255aae729c",
            "email": "james.bond@mi6.co.uk",
            "first_name": "James",
            "last_name": "Bond",
        },
        "friend_email": "fred@example.com",
        "campaign_id": "ae37c8ce-f82b-4e1b-9653-b802ae459a62",
    },
    {
        "event_id": "gw_c5ee5905f9ed88fde43dbec4f289174b",
        "type": "signup.completed",
        "referral_id": "rw_e523da29-6157-4aac-b4b5-05b3b7b14fb6",
        "occurred_at": "2020-04-27T00:36:28.448Z",
        "customer": {"id": "cus_ABC123", "email": "fred@example.com"},
    },
]

INTERNAL_SECRET = "refstream_internal_test_secret_0123456789"
INTERNAL_T = 1767225600
INTERNAL = (
    b'{"event_id":"evt_2","type":"signup.completed","referral_id":"ref_1","occurred_at":'
    b'"2026-11-21T09:30:00+01:00","customer":{"id":"cus_bob","email":"Bob@Example.com","first_name":"Bob"}}'
)
INTERNAL_SHA256 = "e2819d1083eb1c758d4b8a09c36ca4045b29e77cb7ff4c129d386aab61634a4b"
INTERNAL_SIGNATURE = (
    "t=1767225600,v1=2eb38a0173c222a3055c291e1b50a8cb055cc92ab26ab409ea41963ae8a3384a"
)
