// SPDX-License-Identifier: MIT
// One node of the test cluster (tests/e2e/test_cluster.py): an aedes broker on 127.0.0.1:PORT
// whose sessions (subscriptions, queued QoS 1 messages) live in redis and whose messages
// reach every other node through redis pub/sub. node node.mjs PORT REDIS_PORT NODE_ID
import { createServer } from 'node:net'
import { Aedes } from 'aedes'
import persistence from 'aedes-persistence-redis'
import mqemitter from 'mqemitter-redis'

const [port, redisPort, id] = process.argv.slice(2)
const redis = { host: '127.0.0.1', port: Number(redisPort) }
const broker = await Aedes.createBroker({
  id,
  persistence: persistence(redis),
  mq: mqemitter(redis)
})
const server = createServer(broker.handle)
server.listen(Number(port), '127.0.0.1', () => console.log('listening ' + port))
