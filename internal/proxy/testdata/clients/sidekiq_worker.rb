# The application's Sidekiq worker class, as `sidekiq -r` loads it; the
# Redis address comes from REDIS_URL, as Sidekiq's default.
require 'sidekiq'

class HardWorker
  include Sidekiq::Worker

  def perform(a, b)
    a + b
  end
end

# sidekiq_push_many.rb's job: appends n to the list done, over Sidekiq's
# own pool of connections, so that the test sees each job run exactly
# once.
class RecordWorker
  include Sidekiq::Worker

  def perform(n)
    Sidekiq.redis { |conn| conn.rpush('done', n) }
  end
end
