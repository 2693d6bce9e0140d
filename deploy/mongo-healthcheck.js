// Healthcheck of docker-compose.yml's `mongo` service (run by mongosh inside the container, which
// has the root credentials in its environment). The first passes initiate the one-member replica
// set `rs0` (the app's transactions need one); it is healthy once this member is the writable
// primary. Idempotent: an initiated set is only checked.
db.getSiblingDB("admin").auth(process.env.MONGO_INITDB_ROOT_USERNAME, process.env.MONGO_INITDB_ROOT_PASSWORD);
try {
  rs.status();
} catch (error) {
  if (error.codeName !== "NotYetInitialized") {
    throw error;
  }
  // `mongo` is the service's name on the compose network: the address the app's clients use.
  rs.initiate({ _id: "rs0", members: [{ _id: 0, host: "mongo:27017" }] });
}
if (!db.hello().isWritablePrimary) {
  quit(1);
}
