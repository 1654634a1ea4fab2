"""The job contract shared by the API (service/) and the training worker (worker/): typed job specs and records,
the Redis job store and the producer that queues jobs by task name. Depends on ssa_core only; imports neither
service nor worker, and no torch."""
