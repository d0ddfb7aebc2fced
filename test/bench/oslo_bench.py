"""oslo.messaging's own figures for bench:rpc: a server and a client in one process, on the same broker."""
import json
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from oslo_config import cfg
import kombu
import oslo_messaging as om

url, calls = sys.argv[1], int(sys.argv[2])
conf = cfg.CONF
conf([], project='basalt-bench')
exchange = 'bench_oslo_' + uuid.uuid4().hex[:8]
om.set_transport_defaults(control_exchange=exchange)
transport = om.get_rpc_transport(conf, url='rabbit://' + url.split('://', 1)[1])
topic = 'bench_oslo_' + uuid.uuid4().hex[:8]
handled = [0]
lock = threading.Lock()


class Endpoint:
    def echo(self, ctxt, n):
        return n

    def note(self, ctxt, n):
        with lock:
            handled[0] += 1


server = om.get_rpc_server(transport, om.Target(topic=topic, server='h'), [Endpoint()], executor='threading')
server.start()
client = om.get_rpc_client(transport, om.Target(topic=topic), timeout=30)
ctxt = {'request_id': 'req-bench'}
for _ in range(50):
    client.call(ctxt, 'echo', n=1)
samples = []
start = time.perf_counter()
for _ in range(calls):
    t = time.perf_counter()
    client.call(ctxt, 'echo', n=1)
    samples.append((time.perf_counter() - t) * 1000)
elapsed = time.perf_counter() - start
samples.sort()
pct = lambda p: samples[min(len(samples) - 1, max(0, int(p / 100 * len(samples) + 0.999) - 1))]
start = time.perf_counter()
with ThreadPoolExecutor(8) as pool:
    list(pool.map(lambda _: client.call(ctxt, 'echo', n=1), range(calls)))
calls8 = calls / (time.perf_counter() - start)
casts = calls
start = time.perf_counter()
for i in range(casts):
    client.cast(ctxt, 'note', n=i)
while handled[0] < casts:
    time.sleep(0.001)
casts_per_sec = casts / (time.perf_counter() - start)
server.stop()
server.wait()
transport.cleanup()
# oslo leaves its durable topic queues and its exchange to the next server; the bench has none
with kombu.Connection(url) as conn:
    channel = conn.default_channel
    for queue in (topic, topic + '.h'):
        channel.queue_delete(queue=queue)
    channel.exchange_delete(exchange=exchange)
print(json.dumps({'p50': pct(50), 'p99': pct(99), 'callsPerSec': calls / elapsed, 'calls8PerSec': calls8,
                  'castsPerSec': casts_per_sec}))
