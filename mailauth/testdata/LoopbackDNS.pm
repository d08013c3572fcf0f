# LoopbackDNS.pm: what the Mail::DKIM tools (arc-verify.pl,
# dkim-verify.pl) share: keys come from the test's DNS server on
# 127.0.0.1:PORT (UDP, then TCP for truncated answers), never from the
# machine's resolver, and the message on stdin is fed with CRLF line ends.
package LoopbackDNS;
use strict;
use warnings;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;

# use_port(PORT): Mail::DKIM looks keys up at 127.0.0.1:PORT.
sub use_port {
    my ($port) = @_;
    Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
        nameservers => ['127.0.0.1'],
        port        => $port,
        recurse     => 0,
        retry       => 1,
        udp_timeout => 5,
        tcp_timeout => 5,
    ));
}

# feed(VERIFIER): prints stdin into a Mail::DKIM verifier and closes it.
sub feed {
    my ($v) = @_;
    binmode STDIN;
    while (my $line = <STDIN>) {
        $line =~ s/\015?\012\z/\015\012/;    # Mail::DKIM wants CRLF
        $v->PRINT($line);
    }
    $v->CLOSE();
}

1;
