#!/usr/bin/perl
# arc-verify.pl PORT < message
#
# Validates the ARC chain (RFC 8617) of the message on stdin with
# Mail::DKIM::ARC::Verifier, looking keys up at the DNS server on
# 127.0.0.1:PORT. Prints "cv=<result> <detail>", then one line per
# signature. Exits 0 when the chain passes.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;    # LoopbackDNS.pm beside this script
use LoopbackDNS;
use Mail::DKIM::ARC::Verifier;

my $port = shift @ARGV or die "usage: $0 PORT < message\n";
LoopbackDNS::use_port($port);

my $arc = Mail::DKIM::ARC::Verifier->new(Strict => 1);
LoopbackDNS::feed($arc);

printf "cv=%s %s\n", $arc->result, $arc->result_detail // '';
for my $sig ($arc->signatures) {
    printf "  %s i=%s d=%s %s\n", ref($sig) =~ /Seal/ ? 'AS' : 'AMS', $sig->instance // '-',
      $sig->domain // '-', $sig->result // '-';
}
exit($arc->result eq 'pass' ? 0 : 1);
