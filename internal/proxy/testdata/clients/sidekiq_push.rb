# Sidekiq's client as an application pushes a job: Sidekiq::Client.push,
# with Sidekiq's and redis-rb's default options. Sidekiq writes the job
# to the list queue:default and adds "default" to the set queues in one
# MULTI/EXEC.
#
# argv: ADDR. Prints one JSON object: "jid", and "result", what is read
# back, without the fields that change at every run.
require 'json'
require 'sidekiq'
require 'sidekiq/api'
require_relative 'sidekiq_worker'

Sidekiq.configure_client do |config|
  config.redis = { url: "redis://#{ARGV.fetch(0)}/0" }
end

jid = Sidekiq::Client.push('class' => 'HardWorker', 'args' => [1, 2])
result = Sidekiq.redis do |conn|
  jobs = conn.lrange('queue:default', 0, -1).map { |j| JSON.parse(j) }
  {
    'llen' => conn.llen('queue:default'),
    'jobs_are_the_jid' => jobs.map { |j| j['jid'] } == [jid],
    'job' => jobs.first&.reject { |k, _| %w[jid created_at enqueued_at].include?(k) },
    'queues' => conn.smembers('queues').sort,
  }
end
# Sidekiq's API reads the same back (as the Web UI does).
result['api_queues'] = Sidekiq::Queue.all.map { |q| [q.name, q.size] }
puts JSON.generate('jid' => jid, 'result' => result)
