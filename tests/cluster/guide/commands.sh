# Once, with ZooKeeper and both ClickHouse servers running: llmlens' tables on both machines.
llmlens migrate --store clickhouse://llmlens:change-me@ch1:9000/llmlens --cluster llmlens
# The first API key; keys, users and logins are shared by every llmlens server of the cluster.
llmlens keys create --project default --role admin --create-project --store 'clickhouse://llmlens:change-me@ch1:9000/llmlens?cluster=llmlens'
# On ch1, and on ch2 with its own name in the URL (each llmlens server talks to its own ClickHouse):
llmlens serve --host 0.0.0.0 --auth on --store 'clickhouse://llmlens:change-me@ch1:9000/llmlens?cluster=llmlens'
llmlens serve --host 0.0.0.0 --auth on --store 'clickhouse://llmlens:change-me@ch2:9000/llmlens?cluster=llmlens'
