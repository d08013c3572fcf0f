#!/usr/bin/perl
# dkim-verify.pl PORT < message
#
# Verifies every DKIM signature of the message on stdin with Mail::DKIM,
# looking keys up at the DNS server on 127.0.0.1:PORT (UDP, then TCP for
# truncated answers). Prints one line per signature:
#   <result> <algorithm> d=<domain> s=<selector> <detail>
# then "overall <result>". Exits 0 when the overall result is pass.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;    # LoopbackDNS.pm beside this script
use LoopbackDNS;
use Mail::DKIM::Verifier;

my $port = shift @ARGV or die "usage: $0 PORT < message\n";
LoopbackDNS::use_port($port);

my $dkim = Mail::DKIM::Verifier->new();
LoopbackDNS::feed($dkim);

for my $sig ($dkim->signatures) {
    printf "%s %s d=%s s=%s %s\n", $sig->result, $sig->algorithm // '-',
      $sig->domain // '-', $sig->selector // '-', $sig->result_detail // '';
}
printf "overall %s\n", $dkim->result;
exit($dkim->result eq 'pass' ? 0 : 1);
