"""Shared set-up for the oslo.messaging peers the interoperability tests run."""
import argparse

from oslo_config import cfg
import oslo_messaging as om


def transport_from_args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--url', required=True)
    parser.add_argument('--exchange', required=True)
    parser.add_argument('--topic', required=True)
    parser.add_argument('--server', default='py-host')
    parser.add_argument('--quorum', action='store_true', help='declare request queues as quorum queues')
    args = parser.parse_args()
    conf = cfg.CONF  # oslo registers its metrics options on the global config
    conf([], project='basalt-interop')
    om.set_transport_defaults(control_exchange=args.exchange)
    # oslo names the RabbitMQ driver rabbit://; its amqp:// is the AMQP 1.0 driver.
    url = 'rabbit://' + args.url.split('://', 1)[1]
    transport = om.get_rpc_transport(conf, url=url)
    # Basalt declares request queues durable by default; oslo must be told the same.
    conf.set_override('amqp_durable_queues', True, group='oslo_messaging_rabbit')
    if args.quorum:
        conf.set_override('rabbit_quorum_queue', True, group='oslo_messaging_rabbit')
    return args, transport
