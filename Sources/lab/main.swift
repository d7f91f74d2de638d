import Engine
print(engineBuildConfiguration)
