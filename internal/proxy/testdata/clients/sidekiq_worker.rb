# The application's Sidekiq worker class, as `sidekiq -r` loads it; the
# Redis address comes from REDIS_URL, as Sidekiq's default.
require 'sidekiq'

class HardWorker
  include Sidekiq::Worker

  def perform(a, b)
    a + b
  end
end
