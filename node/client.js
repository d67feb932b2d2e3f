"use strict";
// polysio/client: the socket.io-client API served by the polysio Rust core.
//   const { io } = require("polysio/client");
//   const socket = io("http://localhost:3000", { auth: { token } });

const client = require("./lib/client");

module.exports = Object.assign(client.io, client, { default: client.io });
