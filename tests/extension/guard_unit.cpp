// The guard's non-template half, compiled into the test module from the extension's
// own source so the test exercises exactly the code the extension ships.
#include "guard.cpp"
