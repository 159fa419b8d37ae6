"""Where webhooks may go (app/destinations.py), as pure logic: what a URL names and what
a name resolves to, in every numeric form of an address."""

import socket

import pytest

from app.destinations import ForbiddenDestination, check_literal, parse_allowed, resolve

PRIVATE = ["127.0.0.1", "2130706433", "0x7f.1", "017700000001", "127.1", "10.1.2.3",
           "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
           "224.0.0.1", "240.0.0.1", "255.255.255.255", "[::1]", "[::]", "[fe80::1]",
           "[fc00::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[64:ff9b::7f00:1]",
           "[2002:7f00:1::]", "[ff02::1]"]


@pytest.mark.parametrize("host", PRIVATE + ["localhost", "LOCALHOST."])
def test_no_form_of_a_private_address_passes(host):
    with pytest.raises(ForbiddenDestination):
        check_literal(f"http://{host}:8080/hook")


def test_public_addresses_and_names_pass_the_intake():
    check_literal("https://93.184.216.34/hook")
    check_literal("https://[2606:2800:220:1::]/hook")
    check_literal("https://hooks.example.com/x?y=1")  # a name: checked when resolved


def fake_resolver(*addresses):
    def resolver(host, port, type=None):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, type, 6, "", (a, port))
                for a in addresses]
    return resolver


def test_a_name_resolving_to_any_private_address_is_refused():
    with pytest.raises(ForbiddenDestination, match="not public"):
        resolve("http://rebind.example/x", resolver=fake_resolver("93.184.216.34", "10.0.0.5"))
    with pytest.raises(ForbiddenDestination, match="not public"):
        resolve("http://v6.example/x", resolver=fake_resolver("::ffff:169.254.169.254"))


def test_the_checked_address_is_the_one_used():
    found = resolve("https://hooks.example:8443/a/b?c=d",
                    resolver=fake_resolver("93.184.216.34", "93.184.216.35"))
    assert (found.address, found.host, found.port, found.path) == (
        "93.184.216.34", "hooks.example", 8443, "/a/b?c=d")


def test_allowed_networks_pass_and_only_they():
    allowed = parse_allowed("127.0.0.0/8, 10.1.0.0/16")
    check_literal("http://127.0.0.1:9/x", allowed)
    check_literal("http://10.1.2.3/x", allowed)
    with pytest.raises(ForbiddenDestination):
        check_literal("http://10.2.0.1/x", allowed)
    with pytest.raises(ForbiddenDestination):
        check_literal("http://[::1]/x", allowed)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http://user:pw@example.com/x",
                                 "http:///x", "http://example.com:99999/x", "x" * 3000])
def test_other_urls_are_refused(url):
    with pytest.raises(ForbiddenDestination):
        check_literal(url)
