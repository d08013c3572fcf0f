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
use Mail::DKIM::DNS;
use Mail::DKIM::Verifier;
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

my $dkim = Mail::DKIM::Verifier->new();
binmode STDIN;
while (my $line = <STDIN>) {
    $line =~ s/\015?\012\z/\015\012/;    # Mail::DKIM wants CRLF
    $dkim->PRINT($line);
}
$dkim->CLOSE();

for my $sig ($dkim->signatures) {
    printf "%s %s d=%s s=%s %s\n", $sig->result, $sig->algorithm // '-',
      $sig->domain // '-', $sig->selector // '-', $sig->result_detail // '';
}
printf "overall %s\n", $dkim->result;
exit($dkim->result eq 'pass' ? 0 : 1);
