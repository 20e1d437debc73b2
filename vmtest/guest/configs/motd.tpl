NexisOS VM test, generation {{.generation}}.
