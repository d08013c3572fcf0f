#!/usr/bin/perl
# arc-verify.pl PORT < message
#
# Validates the ARC chain (RFC 8617) of the message on stdin with
# Mail::DKIM::ARC::Verifier, looking keys up at the DNS server on
# 127.0.0.1:PORT. Prints "cv=<result> <detail>", then one line per
# signature. Exits 0 when the chain passes.
use strict;
use warnings;
use Mail::DKIM::DNS;
use Mail::DKIM::ARC::Verifier;
use Net::DNS::Resolver;

my $port = shift @ARGV or die "usage: $0 PORT < message\n";
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
    nameservers => ['127.0.0.1'],
    port        => $port,
    recurse     => 0,
    retry       => 1,
    udp_timeout => 5,
    tcp_timeout => 5,
));

my $arc = Mail::DKIM::ARC::Verifier->new(Strict => 1);
binmode STDIN;
while (my $line = <STDIN>) {
    $line =~ s/\015?\012\z/\015\012/;    # Mail::DKIM wants CRLF
    $arc->PRINT($line);
}
$arc->CLOSE();

printf "cv=%s %s\n", $arc->result, $arc->result_detail // '';
for my $sig ($arc->signatures) {
    printf "  %s i=%s d=%s %s\n", ref($sig) =~ /Seal/ ? 'AS' : 'AMS', $sig->instance // '-',
      $sig->domain // '-', $sig->result // '-';
}
exit($arc->result eq 'pass' ? 0 : 1);
