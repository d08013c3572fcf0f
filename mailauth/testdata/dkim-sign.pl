#!/usr/bin/perl
# dkim-sign.pl KEYFILE DOMAIN SELECTOR < message > signed-message
#
# Signs the message on stdin with Mail::DKIM::Signer (rsa-sha256,
# relaxed/relaxed; bookworm's Mail::DKIM has no ed25519) and writes it to
# stdout with the DKIM-Signature field prepended. KEYFILE is a PEM RSA key.
use strict;
use warnings;
use Mail::DKIM::Signer;
use Mail::DKIM::TextWrap;

my ($keyfile, $domain, $selector) = @ARGV;
die "usage: $0 KEYFILE DOMAIN SELECTOR < message\n" unless defined $selector;

my $signer = Mail::DKIM::Signer->new(
    Algorithm => 'rsa-sha256',
    Method    => 'relaxed',
    Domain    => $domain,
    Selector  => $selector,
    KeyFile   => $keyfile,
);
binmode STDIN;
binmode STDOUT;
my $msg = '';
while (my $line = <STDIN>) {
    $line =~ s/\015?\012\z/\015\012/;
    $msg .= $line;
}
$signer->PRINT($msg);
$signer->CLOSE();
print $signer->signature->as_string, "\015\012", $msg;
