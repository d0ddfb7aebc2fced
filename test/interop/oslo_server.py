"""An unmodified oslo.messaging RPC server that a Basalt client calls; prints READY, then one JSON line per cast."""
import json
import sys
import signal

import oslo_messaging as om

from oslo_common import transport_from_args


class Endpoint:
    target = om.Target(version='1.1')

    def echo(self, ctxt, value):
        return {'echoed': value, 'request_id': ctxt.get('request_id'), 'project_id': ctxt.get('project_id'),
                'traceparent': ctxt.get('traceparent')}

    def fail(self, ctxt):
        raise ValueError('python says no')

    def note(self, ctxt, n):
        print(json.dumps({'note': n, 'request_id': ctxt.get('request_id')}), flush=True)


args, transport = transport_from_args(__doc__)
server = om.get_rpc_server(transport, om.Target(topic=args.topic, server=args.server), [Endpoint()],
                           executor='threading')
server.start()
print('READY', flush=True)
# Runs until the test closes stdin; the alarm ends it anyway so a failed test never leaves it behind.
signal.alarm(120)
sys.stdin.read()
server.stop()
server.wait()
transport.cleanup()
