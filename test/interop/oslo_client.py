"""An unmodified oslo.messaging RPC client calling a Basalt server; prints one JSON line per step."""
import json
import sys

import oslo_messaging as om

from oslo_common import transport_from_args

args, transport = transport_from_args(__doc__)
client = om.get_rpc_client(transport, om.Target(topic=args.topic, version='1.0'), timeout=15)
ctxt = {'request_id': 'req-11111111-2222-4333-8444-555555555555', 'project_id': 'p-python',
        'user_id': 'u-python', 'is_admin': False, 'roles': ['member']}


def emit(step, **fields):
    print(json.dumps({'step': step, **fields}), flush=True)


emit('echo', result=client.prepare(server=args.server).call(ctxt, 'echo', value=42))
try:
    client.call(ctxt, 'fail')
    emit('fail', raised=None)
except om.RemoteError as exc:
    emit('fail', raised='RemoteError', exc_type=exc.exc_type, value=exc.value)
emit('ping', result=client.call(ctxt, 'oslo_rpc_server_ping'))
client.cast(ctxt, 'note', n=1)
client.prepare(fanout=True).cast(ctxt, 'note', n=2)
emit('done')
transport.cleanup()
sys.exit(0)
