# Sidekiq's client as an application feeds its workers: Sidekiq::Client.push
# of RecordWorker with n for n in 0..COUNT-1, round robin over the queues,
# in ROUNDS batches. Before each batch it waits until the queues are empty
# and a little more, so that the workers block (BRPOP) when it comes.
#
# argv: ADDR COUNT ROUNDS QUEUE... Prints one JSON object: "pushed", the
# number of jobs.
require 'json'
require 'sidekiq'
require_relative 'sidekiq_worker'

addr, count, rounds, *queues = ARGV
count = Integer(count)
rounds = Integer(rounds)
Sidekiq.configure_client do |config|
  config.redis = { url: "redis://#{addr}/0" }
end

# Workers that stopped working hold the script up 10 s at most.
give_up = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
n = 0
rounds.times do |i|
  Sidekiq.redis do |conn|
    sleep 0.01 until queues.all? { |q| conn.llen("queue:#{q}").zero? } || Process.clock_gettime(Process::CLOCK_MONOTONIC) > give_up
  end
  sleep 0.2
  while n < count * (i + 1) / rounds
    Sidekiq::Client.push('class' => RecordWorker, 'queue' => queues[n % queues.size], 'args' => [n])
    n += 1
  end
end
puts JSON.generate('pushed' => n)
